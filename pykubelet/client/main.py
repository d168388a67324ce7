"""``pykubelet client``: the kubelet API from the command line, with kubectl's connection flags,
output formats (``-o json|yaml|wide``), messages and exit statuses (errors on stderr, 1 on
failure; ``exec`` exits with the command's status)."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import datetime
import json
import sys
import urllib.parse
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

import yaml

from pykubelet.client.config import ConnectionFlags, resolve_connection
from pykubelet.client.errors import ClientError, ServerError, UsageError
from pykubelet.client.forward import forward_ports, parse_port_pairs
from pykubelet.client.probe import check_probe_url, probe, render_probe
from pykubelet.client.remote import ExecRequest, run_exec
from pykubelet.client.tables import POD_COLUMNS, POD_WIDE_COLUMNS, format_table, pod_row
from pykubelet.client.transport import KubeletSession

__all__ = ["client_main"]

Handler = Callable[[argparse.Namespace, KubeletSession], Awaitable[int]]

_DURATION_UNITS = {"s": 1, "m": 60, "h": 3600}


class _Parser(argparse.ArgumentParser):
    """argparse that reports like kubectl (``error: ...``, exit 1) instead of exiting 2."""

    def error(self, message: str) -> Any:
        raise UsageError(message)


def _connection_flags(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("connection (as kubectl)")
    g.add_argument("--kubeconfig", default="", help="kubeconfig file ($KUBECONFIG, ~/.kube/config)")
    g.add_argument("--context", default="", help="kubeconfig context to use")
    g.add_argument("-s", "--server", default="", help="kubelet URL, e.g. https://node:10250")
    g.add_argument("--certificate-authority", default="", help="CA bundle to verify the kubelet")
    g.add_argument("--client-certificate", default="", help="client certificate (PEM)")
    g.add_argument("--client-key", default="", help="client key (PEM)")
    g.add_argument("--token", default="", help="bearer token")
    g.add_argument(
        "--insecure-skip-tls-verify",
        nargs="?",
        const="true",
        default=None,
        choices=("true", "false"),
        help="do not verify the kubelet's certificate (insecure)",
    )
    g.add_argument("-n", "--namespace", default="", help="namespace (default: the context's)")


def _output_flag(p: argparse.ArgumentParser, choices: Sequence[str]) -> None:
    p.add_argument("-o", "--output", default="", choices=list(choices), help="output format")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="pykubelet client", description=__doc__)
    sub = p.add_subparsers(dest="subcommand", required=True, parser_class=_Parser)

    pods = sub.add_parser("pods", help="list the node's pods (GET /pods)")
    pods.add_argument("names", nargs="*", help="only these pods")
    pods.add_argument("-A", "--all-namespaces", action="store_true")
    _output_flag(pods, ("json", "yaml", "wide", "name"))

    logs = sub.add_parser("logs", help="print a container's log (GET /containerLogs)")
    logs.add_argument("pod")
    logs.add_argument("-c", "--container", default="")
    logs.add_argument("-f", "--follow", action="store_true")
    logs.add_argument("-p", "--previous", action="store_true")
    logs.add_argument("--tail", type=int, default=-1, help="lines from the end (-1: all)")
    logs.add_argument("--since", default="", help="relative duration, e.g. 5s, 2m, 3h")
    logs.add_argument("--since-time", default="", help="RFC3339 time")
    logs.add_argument("--timestamps", action="store_true")
    logs.add_argument("--limit-bytes", type=int, default=0)

    ex = sub.add_parser("exec", help="run a command in a container (WebSocket v5/v4)")
    ex.add_argument("pod")
    ex.add_argument("-c", "--container", default="")
    ex.add_argument("-i", "--stdin", action="store_true", help="pass stdin to the container")
    ex.add_argument("-t", "--tty", action="store_true", help="stdin is a TTY")

    pf = sub.add_parser("port-forward", help="forward local ports to a pod (WebSocket v4)")
    pf.add_argument("pod")
    pf.add_argument("ports", nargs="+", metavar="[LOCAL]:REMOTE")
    pf.add_argument("--address", default="127.0.0.1", help="local address to listen on")

    st = sub.add_parser("stats", help="CPU and memory per pod (GET /stats/summary)")
    st.add_argument("-A", "--all-namespaces", action="store_true")
    st.add_argument("--node", action="store_true", help="the node's usage instead of pods'")
    _output_flag(st, ("json", "yaml"))

    me = sub.add_parser("metrics", help="Prometheus metrics (GET /metrics[/KIND])")
    me.add_argument("kind", nargs="?", default="", choices=("", "resource", "cadvisor", "probes"))

    hz = sub.add_parser("healthz", help="health checks (GET /healthz[/CHECK]?verbose)")
    hz.add_argument("check", nargs="?", default="")

    pr = sub.add_parser("probe", help="which paths of a kubelet answer anonymously")
    pr.add_argument("urls", nargs="+", metavar="URL", help="one kubelet base URL each")

    raw = sub.add_parser("raw", help="GET any path and print the body (kubectl get --raw)")
    raw.add_argument("path")

    for sp in sub.choices.values():
        _connection_flags(sp)
    return p


def _since_seconds(raw: str) -> int:
    if not raw:
        return 0
    unit = raw[-1]
    if unit not in _DURATION_UNITS or not raw[:-1].isdigit() or int(raw[:-1]) <= 0:
        raise UsageError(f"invalid argument {raw!r} for --since: use a duration like 10s, 5m, 2h")
    return int(raw[:-1]) * _DURATION_UNITS[unit]


async def _pod_list(s: KubeletSession) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((await s.get("/pods")).body)
    doc["items"] = doc.get("items") or []
    return doc


async def _find_pod(s: KubeletSession, namespace: str, name: str) -> Mapping[str, Any]:
    items: list[Mapping[str, Any]] = (await _pod_list(s))["items"]
    for item in items:
        md = item.get("metadata", {})
        if md.get("namespace") == namespace and md.get("name") == name:
            return item
    raise ServerError(404, f'pods "{name}" not found')


def _pick_container(pod: Mapping[str, Any], wanted: str) -> str:
    names = [c["name"] for c in pod.get("spec", {}).get("containers", [])]
    if wanted:
        inits = [c["name"] for c in pod.get("spec", {}).get("initContainers") or []]
        if wanted not in names + inits:
            pod_name = pod["metadata"]["name"]
            raise ServerError(404, f'container "{wanted}" not found in pod "{pod_name}"')
        return wanted
    if not names:
        raise UsageError(f"pod {pod['metadata']['name']} has no containers")
    if len(names) > 1:
        print(f'Defaulted container "{names[0]}" out of: {", ".join(names)}', file=sys.stderr)
    return str(names[0])


def _dump(obj: object, fmt: str) -> str:
    if fmt == "yaml":
        return yaml.safe_dump(obj, sort_keys=True, default_flow_style=False)
    return json.dumps(obj, indent=4) + "\n"


async def _pods(a: argparse.Namespace, s: KubeletSession) -> int:
    doc = await _pod_list(s)
    ns = s.conn.namespace
    items = [
        i
        for i in doc["items"]
        if (a.all_namespaces or i["metadata"].get("namespace") == ns)
        and (not a.names or i["metadata"]["name"] in a.names)
    ]
    missing = [n for n in a.names if n not in {i["metadata"]["name"] for i in items}]
    for name in missing:
        print(f'Error from server (NotFound): pods "{name}" not found', file=sys.stderr)
    if a.output in ("json", "yaml"):
        if len(a.names) == 1 and items:
            sys.stdout.write(_dump({"apiVersion": "v1", "kind": "Pod", **items[0]}, a.output))
        else:
            out = {"apiVersion": "v1", "items": items, "kind": "List", "metadata": {}}
            sys.stdout.write(_dump(out, a.output))
    elif a.output == "name":
        sys.stdout.write("".join(f"pod/{i['metadata']['name']}\n" for i in items))
    elif items:
        now = datetime.datetime.now(datetime.UTC)
        wide = a.output == "wide"
        header: list[str] = list(POD_WIDE_COLUMNS if wide else POD_COLUMNS)
        rows = [pod_row(i, now, wide=wide) for i in items]
        if a.all_namespaces:
            header.insert(0, "NAMESPACE")
            rows = [[i["metadata"]["namespace"], *r] for i, r in zip(items, rows, strict=True)]
        sys.stdout.write(format_table(header, rows))
    elif not a.names:
        where = "" if a.all_namespaces else f" in {ns} namespace"
        print(f"No resources found{where}.", file=sys.stderr)
    return 1 if missing else 0


async def _logs(a: argparse.Namespace, s: KubeletSession) -> int:
    ns = s.conn.namespace
    pod = await _find_pod(s, ns, a.pod)
    container = _pick_container(pod, a.container)
    query: list[tuple[str, str]] = []
    if a.follow:
        query.append(("follow", "true"))
    if a.previous:
        query.append(("previous", "true"))
    if a.timestamps:
        query.append(("timestamps", "true"))
    if a.tail >= 0:
        query.append(("tailLines", str(a.tail)))
    if a.since and a.since_time:
        raise UsageError("at most one of --since-time / --since may be used")
    if a.since:
        query.append(("sinceSeconds", str(_since_seconds(a.since))))
    if a.since_time:
        query.append(("sinceTime", a.since_time))
    if a.limit_bytes:
        query.append(("limitBytes", str(a.limit_bytes)))
    out = sys.stdout.buffer
    async for chunk in s.stream(f"/containerLogs/{ns}/{a.pod}/{container}", query):
        out.write(chunk)
        out.flush()
    return 0


async def _exec(a: argparse.Namespace, s: KubeletSession) -> int:
    ns = s.conn.namespace
    pod = await _find_pod(s, ns, a.pod)
    container = _pick_container(pod, a.container)
    tty = a.tty
    if tty and not (a.stdin and sys.stdin.isatty()):
        print("Unable to use a TTY - input is not a terminal or the right kind of file",
              file=sys.stderr)  # fmt: skip
        tty = False
    req = ExecRequest(
        namespace=ns,
        pod=a.pod,
        container=container,
        command=a.argv,
        stdin=a.stdin,
        tty=tty,
    )
    outcome = await run_exec(s, req)
    if outcome.message:
        print(outcome.message, file=sys.stderr)
    return outcome.exit_code


async def _port_forward(a: argparse.Namespace, s: KubeletSession) -> int:
    pairs = parse_port_pairs(a.ports)
    ns = s.conn.namespace
    pod = await _find_pod(s, ns, a.pod)
    phase = pod.get("status", {}).get("phase")
    if phase != "Running":
        raise UsageError(
            f"unable to forward port because pod is not running. Current status={phase}"
        )
    await forward_ports(s, ns, a.pod, pairs, address=a.address)
    return 0


def _cores(stats: Mapping[str, Any]) -> str:
    nano = (stats.get("cpu") or {}).get("usageNanoCores")
    return "<unknown>" if nano is None else f"{int(nano) // 1_000_000}m"


def _memory(stats: Mapping[str, Any]) -> str:
    ws = (stats.get("memory") or {}).get("workingSetBytes")
    return "<unknown>" if ws is None else f"{int(ws) // (1 << 20)}Mi"


async def _stats(a: argparse.Namespace, s: KubeletSession) -> int:
    summary = json.loads((await s.get("/stats/summary")).body)
    if a.output:
        sys.stdout.write(_dump(summary, a.output))
        return 0
    if a.node:
        node = summary.get("node", {})
        rows = [[node.get("nodeName", ""), _cores(node), _memory(node)]]
        sys.stdout.write(format_table(["NAME", "CPU(cores)", "MEMORY(bytes)"], rows))
        return 0
    ns = s.conn.namespace
    pods = [
        p for p in summary.get("pods") or [] if a.all_namespaces or p["podRef"]["namespace"] == ns
    ]
    header = ["NAME", "CPU(cores)", "MEMORY(bytes)"]
    rows = [[p["podRef"]["name"], _cores(p), _memory(p)] for p in pods]
    if a.all_namespaces:
        header.insert(0, "NAMESPACE")
        rows = [[p["podRef"]["namespace"], *r] for p, r in zip(pods, rows, strict=True)]
    if not rows:
        print("No resources found.", file=sys.stderr)
        return 0
    sys.stdout.write(format_table(header, rows))
    return 0


async def _metrics(a: argparse.Namespace, s: KubeletSession) -> int:
    path = "/metrics" + (f"/{a.kind}" if a.kind else "")
    sys.stdout.buffer.write((await s.get(path)).body)
    return 0


async def _healthz(a: argparse.Namespace, s: KubeletSession) -> int:
    path = "/healthz" + (f"/{a.check}" if a.check else "")
    reply = await s.get(path, [("verbose", "")] if not a.check else [], check=False)
    if reply.status != 200:
        raise ServerError(reply.status, reply.text)
    sys.stdout.write(reply.text if reply.text.endswith("\n") else reply.text + "\n")
    return 0


async def _raw(a: argparse.Namespace, s: KubeletSession) -> int:
    if not a.path.startswith("/"):
        raise UsageError(f"--raw must be a path starting with /, got {a.path!r}")
    path, _, query = a.path.partition("?")
    pairs = urllib.parse.parse_qsl(query, keep_blank_values=True)
    sys.stdout.buffer.write((await s.get(path, pairs)).body)
    return 0


HANDLERS: dict[str, Handler] = {
    "pods": _pods,
    "logs": _logs,
    "exec": _exec,
    "port-forward": _port_forward,
    "stats": _stats,
    "metrics": _metrics,
    "healthz": _healthz,
    "raw": _raw,
}


def _flags(a: argparse.Namespace) -> ConnectionFlags:
    insecure = None if a.insecure_skip_tls_verify is None else a.insecure_skip_tls_verify == "true"
    return ConnectionFlags(
        kubeconfig=a.kubeconfig,
        context=a.context,
        server=a.server,
        certificate_authority=a.certificate_authority,
        client_certificate=a.client_certificate,
        client_key=a.client_key,
        token=a.token,
        insecure_skip_tls_verify=insecure,
        namespace=a.namespace,
    )


async def _probe(a: argparse.Namespace) -> int:
    from pykubelet.server.openapi import load_description

    bases = [check_probe_url(u) for u in a.urls]  # all refused before anything is sent
    flags = _flags(a)
    creds = bool(flags.token or flags.client_certificate or flags.kubeconfig)
    conn = resolve_connection(flags if flags.server else _with_server(flags, bases[0]))
    who = "with credentials" if creds and (conn.token or conn.client_cert_pem) else None
    doc = load_description()
    for base in bases:
        rows = await probe(base, conn, doc, with_credentials=who is not None)
        sys.stdout.write(render_probe(base, rows, who))
    return 0


def _with_server(flags: ConnectionFlags, server: str) -> ConnectionFlags:
    return dataclasses.replace(flags, server=server)


async def _run(a: argparse.Namespace) -> int:
    if a.subcommand == "probe":
        return await _probe(a)
    conn = resolve_connection(_flags(a))
    async with KubeletSession(conn) as s:
        return await HANDLERS[a.subcommand](a, s)


def client_main(argv: Sequence[str]) -> int:
    """Entry point of ``pykubelet client``; returns the exit status."""
    args = list(argv)
    command: list[str] = []
    if "--" in args:  # exec POD -- CMD...: everything after -- is the command, untouched
        cut = args.index("--")
        args, command = args[:cut], args[cut + 1 :]
    try:
        a = build_parser().parse_args(args)
        if a.subcommand == "exec" and not command:
            raise UsageError("you must specify at least one command for the container")
        if a.subcommand != "exec" and command:
            raise UsageError("unexpected arguments after --")
        a.argv = command
        return asyncio.run(_run(a))
    except ClientError as e:
        print(e.render(), file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
