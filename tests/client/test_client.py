"""``pykubelet client`` as a user runs it (a subprocess) against a running agent over real TLS
(in-process, fake runtime, Policy authorizer): output formats, kubectl's messages and exit
statuses, kubeconfig handling, streaming and ``probe``."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import re
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import pytest_asyncio
import yaml

from tests.openapi.agent import FULL, Target, running_agent

pytestmark = pytest.mark.asyncio(loop_scope="module")

POD = "web-walk-node"


@dataclass(frozen=True)
class Result:
    rc: int
    out: str
    err: str


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def target(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Target]:
    async with running_agent(tmp_path_factory.mktemp("client")) as t:
        yield t


def server(t: Target) -> list[str]:
    return [
        "--server", f"https://127.0.0.1:{t.ports[FULL]}",
        "--certificate-authority", t.pki.ca.cert_file,
    ]  # fmt: skip


def admin(t: Target) -> list[str]:
    return [
        *server(t),
        "--client-certificate", t.pki.admin.cert_file,
        "--client-key", t.pki.admin.key_file,
    ]  # fmt: skip


async def client(*args: str, stdin: bytes | None = None, spdy: bool = False) -> Result:
    env = {**os.environ, "KUBECTL_REMOTE_COMMAND_WEBSOCKETS": "false"} if spdy else None
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "pykubelet.cli", "client", *args,
        stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )  # fmt: skip
    async with asyncio.timeout(60):
        out, err = await proc.communicate(stdin)
    assert proc.returncode is not None
    return Result(proc.returncode, out.decode(), err.decode())


async def test_pods_table_like_kubectl(target: Target) -> None:
    r = await client("pods", *admin(target))
    assert r.rc == 0, r.err
    header, row = r.out.splitlines()
    assert header.split() == ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]
    assert header.index("READY") == len(POD) + 3  # columns three spaces apart
    name, ready, status, restarts, age = row.split()
    assert (name, ready, status, restarts) == (POD, "1/1", "Running", "0")
    assert re.fullmatch(r"\d+s", age)
    wide = await client("pods", "-o", "wide", "-A", *admin(target))
    assert wide.out.splitlines()[0].split()[:2] == ["NAMESPACE", "NAME"]
    assert "NOMINATED NODE" in wide.out and "READINESS GATES" in wide.out


async def test_pods_json_and_yaml(target: Target) -> None:
    as_json = await client("pods", "-o", "json", *admin(target))
    doc = json.loads(as_json.out)
    assert doc["kind"] == "List" and [i["metadata"]["name"] for i in doc["items"]] == [POD]
    as_yaml = await client("pods", POD, "-o", "yaml", *admin(target))
    one = yaml.safe_load(as_yaml.out)
    assert (one["kind"], one["metadata"]["uid"]) == ("Pod", target.pod["uid"])
    names = await client("pods", "-o", "name", *admin(target))
    assert names.out == f"pod/{POD}\n"


async def test_empty_namespace_and_missing_pod_say_so_on_stderr(target: Target) -> None:
    r = await client("pods", "-n", "elsewhere", *admin(target))
    assert (r.rc, r.out, r.err) == (0, "", "No resources found in elsewhere namespace.\n")
    r = await client("pods", "nope", *admin(target))
    assert (r.rc, r.err) == (1, 'Error from server (NotFound): pods "nope" not found\n')


async def test_auth_failures_as_kubectl_prints_them(target: Target) -> None:
    r = await client("pods", *server(target))
    assert (r.rc, r.out, r.err) == (1, "", "Error from server (Unauthorized): Unauthorized\n")
    r = await client("pods", *server(target), "--token", target.tokens["nobody"])
    assert r.rc == 1
    assert r.err == (
        "Error from server (Forbidden): Forbidden (user=nobody, verb=get, "
        "resource=nodes, subresource=proxy)\n"
    )
    unverified = await client("pods", "--server", f"https://127.0.0.1:{target.ports[FULL]}")
    assert unverified.rc == 1 and "certificate verify failed" in unverified.err
    skip = await client(
        "pods",
        "--server",
        f"https://127.0.0.1:{target.ports[FULL]}",
        "--insecure-skip-tls-verify",
        "--token",
        target.tokens["u-get-pods"],
    )
    assert skip.rc == 0 and POD in skip.out


async def test_connection_refused_names_the_server(target: Target, unused_port: int) -> None:
    r = await client("pods", "--server", f"https://127.0.0.1:{unused_port}", "--token", "x")
    assert r.rc == 1
    assert r.err.startswith(f"error: unable to connect to https://127.0.0.1:{unused_port}")


async def test_kubeconfig_with_embedded_credentials(target: Target, tmp_path: Path) -> None:
    def b64(path: str) -> str:
        return base64.b64encode(Path(path).read_bytes()).decode()

    kubeconfig = {
        "apiVersion": "v1",
        "kind": "Config",
        "current-context": "node",
        "clusters": [
            {
                "name": "kubelet",
                "cluster": {
                    "server": f"https://127.0.0.1:{target.ports[FULL]}",
                    "certificate-authority-data": b64(target.pki.ca.cert_file),
                },
            }
        ],
        "users": [
            {
                "name": "admin",
                "user": {
                    "client-certificate-data": b64(target.pki.admin.cert_file),
                    "client-key-data": b64(target.pki.admin.key_file),
                },
            },
            {"name": "nobody", "user": {"token": target.tokens["nobody"]}},
        ],
        "contexts": [
            {"name": "node", "context": {"cluster": "kubelet", "user": "admin"}},
            {"name": "weak", "context": {"cluster": "kubelet", "user": "nobody"}},
        ],
    }
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump(kubeconfig))
    r = await client("pods", "-o", "name", "--kubeconfig", str(path))
    assert (r.rc, r.out) == (0, f"pod/{POD}\n"), r.err
    weak = await client("pods", "--kubeconfig", str(path), "--context", "weak")
    assert weak.rc == 1 and "Forbidden (user=nobody" in weak.err
    missing = await client("pods", "--kubeconfig", str(path), "--context", "nosuch")
    assert (missing.rc, missing.err) == (1, f"error: {path}: context 'nosuch' not found\n")


async def test_logs_exec_and_raw(target: Target) -> None:
    logs = await client("logs", POD, "--timestamps", *admin(target))
    assert (logs.rc, logs.out) == (0, "2026-01-02T03:04:05.000000001Z hello\n"), logs.err
    bad = await client("logs", POD, "-c", "nosuch", *admin(target))
    assert (bad.rc, bad.err) == (
        1,
        f'Error from server (NotFound): container "nosuch" not found in pod "{POD}"\n',
    )
    # the fake runtime answers an exec with its argv joined
    ex = await client("exec", POD, *admin(target), "--", "echo", "from", "exec")
    assert (ex.rc, ex.out) == (0, "echo from exec"), ex.err
    spdy = await client("exec", POD, *admin(target), "--", "echo", "over", "spdy", spdy=True)
    assert (spdy.rc, spdy.out) == (0, "echo over spdy"), spdy.err
    no_cmd = await client("exec", POD, *admin(target))
    assert (no_cmd.rc, no_cmd.err) == (
        1,
        "error: you must specify at least one command for the container\n",
    )
    raw = await client("raw", "/configz", *admin(target))
    assert json.loads(raw.out)["kubeletconfig"]["nodeName"] == "walk-node"


async def test_exec_needs_create_even_over_a_websocket_get(target: Target) -> None:
    for spdy in (False, True):
        r = await client(
            "exec", POD, *server(target), "--token", target.tokens["u-get-proxy"], "--", "true",
            spdy=spdy,
        )  # fmt: skip
        assert r.rc == 1
        assert r.err == (
            "Error from server (Forbidden): Forbidden (user=u-get-proxy, verb=create, "
            "resource=nodes, subresource=proxy)\n"
        )


async def test_stats_metrics_healthz(target: Target) -> None:
    stats = await client("stats", *admin(target))
    assert stats.rc == 0, stats.err
    assert stats.out.splitlines()[0].split() == ["NAME", "CPU(cores)", "MEMORY(bytes)"]
    node = await client("stats", "--node", "-o", "json", *admin(target))
    assert json.loads(node.out)["node"]["nodeName"] == "walk-node"
    metrics = await client("metrics", "resource", *admin(target))
    assert metrics.rc == 0 and "# HELP" in metrics.out
    health = await client("healthz", *admin(target))
    assert (health.rc, health.out.splitlines()[-1]) == (0, "healthz check passed")
    ping = await client("healthz", "ping", *admin(target))
    assert (ping.rc, ping.out) == (0, "ok\n")


async def test_port_forward_carries_bytes_both_ways(target: Target) -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "pykubelet.cli", "client", "port-forward", POD, ":80",
        *admin(target),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        async with asyncio.timeout(30):
            line = (await proc.stdout.readline()).decode()
            m = re.fullmatch(r"Forwarding from 127\.0\.0\.1:(\d+) -> 80\n", line)
            assert m, line
            reader, writer = await asyncio.open_connection("127.0.0.1", int(m.group(1)))
            writer.write(b"ping through the tunnel")
            await writer.drain()
            # the fake runtime's pod port echoes what it gets
            got = b""
            while len(got) < len(b"ping through the tunnel"):
                got += await reader.read(100)
            assert got == b"ping through the tunnel"
            writer.close()
            assert (await proc.stdout.readline()).decode() == f"Handling connection for {m[1]}\n"
    finally:
        proc.terminate()
        await proc.wait()


async def test_probe_reports_what_each_path_needs(target: Target) -> None:
    url = f"https://127.0.0.1:{target.ports[FULL]}"
    r = await client("probe", url, "--certificate-authority", target.pki.ca.cert_file)
    assert r.rc == 0, r.err
    rows = _probe_rows(r.out)
    assert rows["/pods"] == ["GET", "401 needs authentication", "get nodes/pods|proxy"]
    assert rows["/exec/{namespace}/{pod}/{container}"][2] == ("create nodes/proxy")
    assert all(v[1] == "401 needs authentication" for v in rows.values())
    assert r.out.endswith(f"{url}: 0 of {len(rows)} paths answer anonymously\n")
    weak = await client(
        "probe", url, "--certificate-authority", target.pki.ca.cert_file,
        "--token", target.tokens["u-get-metrics"],
    )  # fmt: skip
    rows = _probe_rows(weak.out)
    assert rows["/metrics"][:3] == ["GET", "401 needs authentication", "200 answers"]
    assert rows["/pods"][2] == "403 forbidden"
    read_only = await client("probe", f"http://127.0.0.1:{target.ports[10255]}")
    rows = _probe_rows(read_only.out)
    assert rows["/pods"] == ["GET", "200 answers", "none (no authentication on this port)"]
    assert "/configz" not in rows


def _probe_rows(out: str) -> dict[str, list[str]]:
    lines = out.splitlines()
    return {
        parts[0]: parts[1:] for parts in (re.split(r"\s{3,}", line.strip()) for line in lines[1:-1])
    }


@pytest.mark.parametrize(
    "url", ["10.0.0.0/24", "https://192.168.0.0/16", "https://*.example", "https://a,b"]
)
async def test_probe_never_scans_networks(url: str) -> None:
    r = await client("probe", url)
    assert r.rc == 1
    assert r.err == f"error: probe {url!r}: one host per URL; networks are never scanned\n"


async def test_read_only_port_needs_no_credentials(target: Target) -> None:
    r = await client("pods", "-o", "name", "--server", f"http://127.0.0.1:{target.ports[10255]}")
    assert (r.rc, r.out) == (0, f"pod/{POD}\n"), r.err
    debug = await client(
        "raw", "/runningpods/", "--server", f"http://127.0.0.1:{target.ports[10255]}"
    )
    assert (debug.rc, debug.err) == (
        1,
        "Error from server (MethodNotAllowed): Debug endpoints are disabled.\n",
    )
