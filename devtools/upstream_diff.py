"""The differential request set: the same requests sent to the upstream kubelet and to pykubelet.

``python -m devtools.upstream_diff record`` (run by ``scripts/record-upstream.sh`` against the
upstream kubelet v1.20.2 of ``scripts/upstream-k8s``) writes what upstream answers into
``tests/fixtures/upstream/``; ``tests/server/test_upstream_diff.py`` replays the same requests
against a real pykubelet and compares. Node-specific values (pod name, UID, node name) are
written as placeholders, so one recording serves any node.
"""

from __future__ import annotations

import argparse
import http.client
import json
import ssl
import sys
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "DIFF_REQUESTS",
    "FIXTURE_PODS",
    "DiffRequest",
    "Exchange",
    "Target",
    "fetch",
    "placeholders",
    "settled",
]

# What a kubectl exec/attach client sends to open a SPDY session, and a WebSocket one.
_SPDY = (
    ("Connection", "Upgrade"),
    ("Upgrade", "SPDY/3.1"),
    ("X-Stream-Protocol-Version", "v4.channel.k8s.io"),
)
_WEBSOCKET = (
    ("Connection", "Upgrade"),
    ("Upgrade", "websocket"),
    ("Sec-WebSocket-Version", "13"),
    ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
    ("Sec-WebSocket-Protocol", "v4.channel.k8s.io"),
)
_FORM = (("Content-Type", "application/x-www-form-urlencoded"),)
_PROTOBUF_METRICS = (
    "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited"
)
WRONG_UID = "00000000-0000-0000-0000-000000000000"
# The pods of tests/fixtures/upstream/manifests (metadata.name).
FIXTURE_PODS = ("done", "shapes", "volumes", "waiting")
# Bodies are kept when compared, or when this small (error messages); pod lists, stats and
# metrics are not worth storing twice.
_SMALL_BODY_BYTES = 512


@dataclass(frozen=True, slots=True, kw_only=True)
class DiffRequest:
    """One request of the set. ``target`` may hold ``{pod}`` and ``{uid}``;
    ``compare`` names what must be equal: ``status``, ``body`` and lower-case header names."""

    name: str
    method: str
    target: str
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""
    compare: tuple[str, ...] = ("status", "content-type", "x-content-type-options", "server")


# The running pod of tests/fixtures/upstream/manifests/shapes.yaml is {pod}; its container "main".
DIFF_REQUESTS: tuple[DiffRequest, ...] = (
    DiffRequest(name="pods", method="GET", target="/pods"),
    DiffRequest(name="pods-slash", method="GET", target="/pods/"),
    DiffRequest(name="pods-head", method="HEAD", target="/pods"),
    DiffRequest(
        name="pods-lower-case-method",
        method="get",
        target="/pods",
        compare=("status", "content-type", "x-content-type-options"),
    ),
    DiffRequest(name="pods-post", method="POST", target="/pods"),
    DiffRequest(name="pods-options", method="OPTIONS", target="/pods"),
    DiffRequest(
        name="pods-accept-text", method="GET", target="/pods", headers=(("Accept", "text/plain"),)
    ),
    DiffRequest(name="runningpods", method="GET", target="/runningpods/"),
    DiffRequest(
        name="runningpods-accept-text",
        method="GET",
        target="/runningpods/",
        headers=(("Accept", "text/plain"),),
    ),
    DiffRequest(name="stats-root", method="GET", target="/stats/"),
    DiffRequest(name="metrics-cadvisor", method="GET", target="/metrics/cadvisor"),
    DiffRequest(name="metrics-resource", method="GET", target="/metrics/resource"),
    DiffRequest(name="metrics-probes", method="GET", target="/metrics/probes"),
    DiffRequest(
        name="healthz-ping",
        method="GET",
        target="/healthz/ping",
        compare=("status", "body", "content-type", "x-content-type-options"),
    ),
    DiffRequest(
        name="healthz-nosuch",
        method="GET",
        target="/healthz/nosuch",
        compare=("status", "body", "content-type"),
    ),
    DiffRequest(
        name="container-logs-no-such-pod",
        method="GET",
        target="/containerLogs/default/nosuch/main",
        compare=("status", "body", "content-type"),
    ),
    DiffRequest(
        name="container-logs-no-such-container",
        method="GET",
        target="/containerLogs/default/{pod}/nosuch",
        compare=("status", "body", "content-type"),
    ),
    DiffRequest(
        name="container-logs-tail",
        method="GET",
        target="/containerLogs/default/{pod}/main?tailLines=1&limitBytes=3",
        compare=("status", "body", "content-type"),
    ),
    DiffRequest(
        name="container-logs-init",
        method="GET",
        target="/containerLogs/default/{pod}/init",
        compare=("status", "body", "content-type"),
    ),
    DiffRequest(name="unknown-path", method="GET", target="/nosuch", compare=("status", "body")),
    DiffRequest(
        name="healthz-verbose",
        method="GET",
        target="/healthz?verbose",
        compare=("status", "body", "content-type", "x-content-type-options"),
    ),
    DiffRequest(
        name="configz", method="GET", target="/configz", compare=("status", "content-type")
    ),
    DiffRequest(
        name="configz-nosniff",
        method="GET",
        target="/configz",
        compare=("status", "x-content-type-options"),
    ),
    DiffRequest(
        name="flags-v-put",
        method="PUT",
        target="/debug/flags/v",
        body=b"2",
        compare=("status", "body", "content-type", "x-content-type-options"),
    ),
    DiffRequest(
        name="flags-v-put-bad",
        method="PUT",
        target="/debug/flags/v",
        body=b"x",
        compare=("status", "body", "content-type", "x-content-type-options"),
    ),
    DiffRequest(
        name="flags-v-put-newline",
        method="PUT",
        target="/debug/flags/v",
        body=b"2\n",
        compare=("status", "body", "content-type"),
    ),
    DiffRequest(
        name="flags-v-put-too-big",
        method="PUT",
        target="/debug/flags/v",
        body=b"4294967296",
        compare=("status", "body", "content-type"),
    ),
    DiffRequest(
        name="flags-v-put-negative",
        method="PUT",
        target="/debug/flags/v",
        body=b"-1",
        compare=("status", "body", "content-type"),
    ),
    DiffRequest(
        name="flags-v-put-back",
        method="PUT",
        target="/debug/flags/v",
        body=b"2",
        compare=("status", "body"),
    ),
    DiffRequest(
        name="flags-v-get",
        method="GET",
        target="/debug/flags/v",
        compare=("status", "body", "content-type", "x-content-type-options"),
    ),
    DiffRequest(name="stats-summary", method="GET", target="/stats/summary"),
    DiffRequest(name="stats-summary-slash", method="GET", target="/stats/summary/"),
    DiffRequest(
        name="stats-summary-accept-text",
        method="GET",
        target="/stats/summary",
        headers=(("Accept", "text/plain"),),
    ),
    DiffRequest(
        name="stats-redirect", method="GET", target="/stats", compare=("status", "location")
    ),
    DiffRequest(name="metrics", method="GET", target="/metrics"),
    DiffRequest(
        name="metrics-accept-protobuf",
        method="GET",
        target="/metrics",
        headers=(("Accept", _PROTOBUF_METRICS),),
    ),
    DiffRequest(name="logs", method="GET", target="/logs", compare=("status", "location")),
    DiffRequest(name="logs-slash", method="GET", target="/logs/"),
    DiffRequest(
        name="container-logs",
        method="GET",
        target="/containerLogs/default/{pod}/main",
        compare=("status", "body", "content-type", "x-content-type-options"),
    ),
    DiffRequest(
        name="container-logs-bad-tail",
        method="GET",
        target="/containerLogs/default/{pod}/main?tailLines=x",
    ),
    DiffRequest(
        name="run-query",
        method="POST",
        target="/run/default/{pod}/main?cmd=echo+hi",
        compare=("status", "body", "content-type", "x-content-type-options"),
    ),
    DiffRequest(
        name="run-form-body",
        method="POST",
        target="/run/default/{pod}/main",
        headers=_FORM,
        body=b"cmd=echo+from+the+body",
        compare=("status", "body", "content-type", "x-content-type-options"),
    ),
    DiffRequest(
        name="run-uid-form",
        method="POST",
        target="/run/default/{pod}/{uid}/main?cmd=echo+hi",
        compare=("status", "body", "content-type"),
    ),
    DiffRequest(
        name="run-wrong-uid",
        method="POST",
        target="/run/default/{pod}/" + WRONG_UID + "/main?cmd=echo+hi",
        compare=("status", "body", "content-type"),
    ),
    DiffRequest(name="run-get", method="GET", target="/run/default/{pod}/main?cmd=true"),
    DiffRequest(name="run-no-such-pod", method="POST", target="/run/default/nosuch/main?cmd=true"),
    DiffRequest(name="exec-head", method="HEAD", target="/exec/default/{pod}/main?command=true"),
    DiffRequest(
        name="exec-no-upgrade", method="GET", target="/exec/default/{pod}/main?command=true"
    ),
    DiffRequest(
        name="exec-wrong-uid",
        method="GET",
        target="/exec/default/{pod}/" + WRONG_UID + "/main?command=true&output=1",
    ),
    DiffRequest(
        name="exec-spdy-upgrade",
        method="POST",
        target="/exec/default/{pod}/main?command=true&output=1",
        headers=_SPDY,
        compare=("status", "connection", "upgrade", "x-stream-protocol-version"),
    ),
    DiffRequest(
        name="exec-websocket-upgrade",
        method="GET",
        target="/exec/default/{pod}/main?command=true&output=1",
        headers=_WEBSOCKET,
        compare=(
            "status",
            "connection",
            "upgrade",
            "sec-websocket-accept",
            "sec-websocket-protocol",
        ),
    ),
    DiffRequest(
        name="attach-no-upgrade", method="GET", target="/attach/default/{pod}/main?output=1"
    ),
    DiffRequest(name="portforward-no-upgrade", method="GET", target="/portForward/default/{pod}"),
    DiffRequest(
        name="portforward-wrong-uid",
        method="GET",
        target="/portForward/default/{pod}/" + WRONG_UID,
        compare=("status", "body", "content-type"),
    ),
    DiffRequest(
        name="container-logs-head", method="HEAD", target="/containerLogs/default/{pod}/main"
    ),
    DiffRequest(name="stats-summary-head", method="HEAD", target="/stats/summary"),
)


@dataclass(frozen=True, slots=True, kw_only=True)
class Target:
    """Where to send the set, and who the running pod is there."""

    port: int
    ssl_context: ssl.SSLContext
    pod: str
    uid: str
    node: str

    def fill(self, template: str) -> str:
        return template.replace("{pod}", self.pod).replace("{uid}", self.uid)


@dataclass(frozen=True, slots=True, kw_only=True)
class Exchange:
    """An answer as recorded: lower-case header names (``date`` left out), the body as text with
    node-specific values replaced by placeholders (``None`` when not kept or not UTF-8)."""

    status: int
    headers: dict[str, str]
    body: str | None

    def to_json(self) -> dict[str, Any]:
        return {"status": self.status, "headers": self.headers, "body": self.body}

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> Exchange:
        return cls(status=obj["status"], headers=dict(obj["headers"]), body=obj["body"])

    def compared(self, fields: tuple[str, ...]) -> dict[str, object]:
        """Only the fields a request compares; a missing header is ``None``."""
        out: dict[str, object] = {}
        for f in fields:
            if f == "status":
                out[f] = self.status
            elif f == "body":
                out[f] = self.body
            else:
                out[f] = self.headers.get(f)
        return out


def placeholders(text: str, target: Target) -> str:
    """The running pod's name and UID → ``{pod}``, ``{uid}``. The node name is left alone: a
    short one such as ``vm`` would match inside unrelated words."""
    if target.pod:
        text = text.replace(target.pod, "{pod}")
    if target.uid:
        text = text.replace(target.uid, "{uid}")
    return text


def fetch(target: Target, req: DiffRequest, timeout_s: float = 20.0) -> Exchange:
    """Send one request exactly as written (method case, target bytes) and read the answer; a
    101 is read up to its head and the connection closed."""
    conn = http.client.HTTPSConnection(
        "127.0.0.1", target.port, context=target.ssl_context, timeout=timeout_s
    )
    try:
        conn.putrequest(req.method, target.fill(req.target), skip_accept_encoding=True)
        for k, v in req.headers:
            conn.putheader(k, v)
        if req.body:
            conn.putheader("Content-Length", str(len(req.body)))
        conn.endheaders(req.body or None)
        resp = conn.getresponse()
        raw = b"" if resp.status == 101 or req.method == "HEAD" else resp.read()
        headers = {k.lower(): v for k, v in resp.getheaders() if k.lower() != "date"}
    finally:
        conn.close()
    body: str | None = None
    if "body" in req.compare or len(raw) <= _SMALL_BODY_BYTES:
        try:
            body = placeholders(raw.decode("utf-8"), target)
        except UnicodeDecodeError:
            pass
    return Exchange(status=resp.status, headers=headers, body=body)


# ----- recording against the upstream kubelet -----


def _raw_get(target: Target, path: str) -> bytes:
    conn = http.client.HTTPSConnection("127.0.0.1", target.port, context=target.ssl_context)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        body = resp.read()
    finally:
        conn.close()
    if resp.status != 200:
        raise RuntimeError(f"GET {path}: {resp.status}")
    return body


def _get_json(target: Target, path: str) -> Any:
    return json.loads(_raw_get(target, path))


def _wait(cond: Callable[[], Any], timeout_s: float, what: str) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = cond()
        if value:
            return value
        time.sleep(0.5)
    raise RuntimeError(f"timed out after {timeout_s}s waiting for {what}")


def settled(items: list[dict[str, Any]] | None) -> bool:
    """The fixture pods have settled: ``done`` Failed, ``waiting`` waiting with
    ErrImageNeverPull, every other one Running and Ready (init containers done). Both sides
    are recorded or compared only then."""
    pods = {i["metadata"]["name"].split("-", 1)[0]: i["status"] for i in items or []}
    if set(pods) != set(FIXTURE_PODS):
        return False
    for name, status in pods.items():
        if name == "done":
            if status.get("phase") != "Failed":
                return False
            continue
        if name == "waiting":
            states = [c.get("state", {}) for c in status.get("containerStatuses", [])]
            if not states or states[0].get("waiting", {}).get("reason") != "ErrImageNeverPull":
                return False
            continue
        ready = [c for c in status.get("conditions", []) if c["type"] == "Ready"]
        if status.get("phase") != "Running" or not ready or ready[0]["status"] != "True":
            return False
    return True


def record(*, out: Path, manifests: Path, static_dir: Path, base: Target) -> None:
    """Empty node → pods-empty.json; the manifests' pods settled → pods-running.json; then the
    request set → responses.json. The manifests are removed again at the end."""
    out.mkdir(parents=True, exist_ok=True)
    _wait(lambda: _get_json(base, "/pods")["items"] is None, 120, "an empty node")
    (out / "pods-empty.json").write_bytes(_raw_get(base, "/pods"))
    # A fresh UID per run (32 hex digits, as the kubelet's own): containers containerd still
    # keeps from an earlier recording would otherwise count as restarts of these pods.
    copies = []
    for manifest in sorted(manifests.glob("*.yaml")):
        text = manifest.read_text().replace(
            "metadata:\n", f"metadata:\n  uid: {uuid.uuid4().hex}\n", 1
        )
        copies.append(static_dir / manifest.name)
        copies[-1].write_text(text)
    try:
        _wait(lambda: settled(_get_json(base, "/pods")["items"]), 180, "the pods to settle")
        time.sleep(3)  # one more probe period, so restart counts and readiness are final
        body = _raw_get(base, "/pods")
        (out / "pods-running.json").write_bytes(body)
        items = json.loads(body)["items"]
        shapes = next(i for i in items if i["metadata"]["name"].startswith("shapes-"))
        target = Target(
            port=base.port,
            ssl_context=base.ssl_context,
            pod=shapes["metadata"]["name"],
            uid=shapes["metadata"]["uid"],
            node=base.node,
        )
        recorded = {r.name: fetch(target, r).to_json() for r in DIFF_REQUESTS}
        (out / "responses.json").write_text(json.dumps(recorded, indent=1) + "\n")
    finally:
        for copy in copies:
            copy.unlink(missing_ok=True)
    _wait(lambda: _get_json(base, "/pods")["items"] is None, 120, "the pods to go")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m devtools.upstream_diff")
    sub = p.add_subparsers(dest="cmd", required=True)
    rec = sub.add_parser("record", help="record the upstream kubelet's answers")
    rec.add_argument("--port", type=int, default=10250)
    rec.add_argument("--ca", required=True)
    rec.add_argument("--cert", required=True)
    rec.add_argument("--key", required=True)
    rec.add_argument("--node", required=True)
    rec.add_argument("--static-dir", type=Path, required=True, help="the kubelet's staticPodPath")
    rec.add_argument("--manifests", type=Path, required=True)
    rec.add_argument("--out", type=Path, required=True)
    args = p.parse_args(argv)
    ctx = ssl.create_default_context(cafile=args.ca)
    ctx.load_cert_chain(args.cert, args.key)
    base = Target(port=args.port, ssl_context=ctx, pod="", uid="", node=args.node)
    record(out=args.out, manifests=args.manifests, static_dir=args.static_dir, base=base)
    return 0


if __name__ == "__main__":
    sys.exit(main())
