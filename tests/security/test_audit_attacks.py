"""Attacks on the audit trail (issue #14, holes 1-5), each against a real server on 127.0.0.1
with real TLS, a real audit log file and real processes run by the local runtime."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import ssl
import stat
import subprocess
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from pykubelet.security.recording import AsciicastRecorderFactory
from pykubelet.security.setup import request_audit_id
from pykubelet.server import KubeletServers, ServerBackends
from pykubelet.server.audit import AuditLog, AuditObserver
from pykubelet.server.streams import StreamBackend, stream_routes
from pykubelet.stats.agent_metrics import default_metrics
from tests.prereq import require_root
from tests.server.harness import Pki, fetch, running, settings_for, wait_until
from tests.streaming.local_runtime import LocalRuntime, StaticPods, make_pod
from tests.streaming.spdy_client import SpdyClient


@dataclass
class Node:
    servers: KubeletServers
    audit: AuditLog
    observer: AuditObserver
    recordings: Path
    pki: Pki

    @property
    def port(self) -> int:
        assert self.servers.full_port is not None
        return self.servers.full_port

    def admin(self) -> ssl.SSLContext:
        return self.pki.client_context(self.pki.admin)

    def raw(self) -> bytes:
        return Path(self.audit.path).read_bytes()

    def events(self) -> list[dict[str, object]]:
        path = Path(self.audit.path)
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_bytes().decode("utf-8").splitlines()]

    async def settle(self, count: int) -> list[dict[str, object]]:
        """Wait until ``count`` events were written or lost; return what is on disk."""
        await wait_until(lambda: self.audit.written + self.audit.dropped >= count)
        return self.events()


@pytest.fixture
async def node(pki: Pki, tmp_path: Path) -> AsyncIterator[Node]:
    runtime = LocalRuntime()
    pods = StaticPods([make_pod()])
    recordings = tmp_path / "recordings"
    stream = StreamBackend(
        pods=pods,
        runtime=runtime,  # type: ignore[arg-type]
        streaming=runtime,
        recorder_factory=AsciicastRecorderFactory(recordings),
        audit_id_of=request_audit_id,
    )
    audit = AuditLog(tmp_path / "audit" / "audit.log")
    audit.start()
    observer = AuditObserver(audit, node_name="node-a")
    backends = ServerBackends(
        pods=pods,
        runtime=runtime,  # type: ignore[arg-type]
        extra_debug_routes=stream_routes(stream),
        observer=observer,
    )
    try:
        async with running(settings_for(pki), backends) as servers:
            yield Node(servers, audit, observer, recordings, pki)
    finally:
        audit.close()


async def _exec_spdy(
    node: Node, target: str, *, headers: dict[str, str] | None = None, body: bytes = b""
) -> dict[int, bytes]:
    c = await SpdyClient.connect(
        "127.0.0.1", node.port, target, ["v4.channel.k8s.io"], node.admin(),
        headers=headers, body=body,
    )  # fmt: skip
    assert c.status == 101, c.head
    c.open({"streamtype": "error"})
    out = c.open({"streamtype": "stdout"})
    async with asyncio.timeout(20):
        result = await c.pump()
    return {out: result.data[out]}


async def test_non_utf8_header_still_audits_the_command(node: Node, tmp_path: Path) -> None:
    """Hole 1: one undecodable byte in a header made the whole event vanish, uncounted."""
    marker = tmp_path / "ran-with-bad-user-agent"
    await _exec_spdy(
        node,
        f"/exec/default/p/main?command=touch&command={marker}&output=1",
        headers={"User-Agent": "evil\udcff\u2028x"},  # \xff on the wire, then U+2028
    )
    assert marker.exists()
    events = await node.settle(2)
    complete = [e for e in events if e["stage"] == "ResponseComplete"]
    assert len(complete) == 1, events
    ev = complete[0]
    assert ev["userAgent"] == "evil\ufffd\u2028x"
    assert ev["annotations"]["pykubelet.io/command"] == json.dumps(["touch", str(marker)])  # type: ignore[index]
    raw = node.raw()
    assert "\u2028".encode() not in raw and b"\\u2028" in raw  # the separator is escaped
    assert node.audit.dropped == 0


async def test_urlencoded_post_body_command_is_the_audited_command(
    node: Node, tmp_path: Path
) -> None:
    """Hole 2: ``command=`` in a POST body ran, while the audit read only the query string."""
    marker = tmp_path / "ran-from-body"
    body = f"command=touch&command={marker}".encode()
    await _exec_spdy(
        node,
        "/exec/default/p/main?output=1",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        body=body,
    )
    events = await node.settle(2)
    (ev,) = [e for e in events if e["stage"] == "ResponseComplete"]
    audited = json.loads(ev["annotations"]["pykubelet.io/command"])  # type: ignore[index]
    assert marker.exists()  # Go's FormValue reads the body: the command runs
    assert audited == ["touch", str(marker)]


async def test_percent_escapes_in_the_path_do_not_split_audit_from_execution(
    node: Node, tmp_path: Path
) -> None:
    """Hole 3: a %-escape in the path rerouted with a re-encoded query: the handler ran
    ``%23`` literally while the audit decoded it to ``#``."""
    marker = tmp_path / "a#b"
    target = f"/exec/default/%70/main?command=touch&command={str(marker).replace('#', '%23')}"
    await _exec_spdy(node, target + "&output=1")
    assert marker.exists(), sorted(os.listdir(tmp_path))
    events = await node.settle(2)
    (ev,) = [e for e in events if e["stage"] == "ResponseComplete"]
    assert json.loads(ev["annotations"]["pykubelet.io/command"]) == ["touch", str(marker)]  # type: ignore[index]


async def test_stream_is_audited_when_it_opens(node: Node, tmp_path: Path) -> None:
    """Hole 4: a session was audited only when it ended (lost if the agent died mid-session)."""
    c = await SpdyClient.connect(
        "127.0.0.1", node.port,
        "/exec/default/p/main?command=sleep&command=30&output=1", ["v4.channel.k8s.io"],
        node.admin(),
    )  # fmt: skip
    assert c.status == 101
    try:
        events = await node.settle(1)
        (ev,) = events
        assert ev["stage"] == "ResponseStarted"
        assert ev["responseStatus"] == {"metadata": {}, "code": 101}
        assert ev["annotations"]["pykubelet.io/command"] == '["sleep", "30"]'  # type: ignore[index]
        assert ev["user"]["username"] == "admin"  # type: ignore[index]
    finally:
        c.close()
    events = await node.settle(2)
    assert [e["stage"] for e in events] == ["ResponseStarted", "ResponseComplete"]
    assert events[0]["auditID"] == events[1]["auditID"]


async def test_audit_log_is_private_and_unauthenticated_floods_are_capped(node: Node) -> None:
    """Hole 5: audit.log was 0644; a 404 before auth was audited with an attacker-sized
    User-Agent, unlimited."""
    registry = default_metrics().registry
    before = registry.get_sample_value("pykubelet_audit_events_suppressed_total") or 0.0
    ua = "A" * 30_000  # under the 32 KiB header field cap
    anonymous = ssl.create_default_context(cafile=node.pki.ca.cert_file)
    first = await fetch(node.port, "/nope", ctx=anonymous, headers={"User-Agent": ua})
    assert first.status == 404
    events = await node.settle(1)
    assert stat.S_IMODE(os.stat(node.audit.path).st_mode) == 0o600
    assert len(events[0]["userAgent"]) < 1200  # type: ignore[arg-type]
    assert str(events[0]["userAgent"]).endswith("[truncated 28976 characters]")

    async def flood() -> None:
        for _ in range(30):
            await fetch(node.port, "/nope", ctx=anonymous)

    await asyncio.gather(*(flood() for _ in range(10)))  # 300 unauthenticated requests
    await wait_until(lambda: node.audit.written + node.observer.suppressed >= 301)
    assert node.observer.suppressed > 0
    assert node.audit.written < 301
    after = registry.get_sample_value("pykubelet_audit_events_suppressed_total")
    assert after == before + node.observer.suppressed
    # an authenticated request is never suppressed
    ok = await fetch(node.port, "/pods", ctx=node.admin())
    assert ok.status == 200
    await wait_until(lambda: any(e.get("user") for e in node.events()))


async def test_recording_has_stderr_and_non_tty_stdin(node: Node) -> None:
    """Hole 5: recordings held stdout only: a script piped to ``sh`` left no trace."""
    c = await SpdyClient.connect(
        "127.0.0.1", node.port,
        "/exec/default/p/main?command=sh&input=1&output=1&error=1", ["v4.channel.k8s.io"],
        node.admin(),
    )  # fmt: skip
    assert c.status == 101
    c.open({"streamtype": "error"})
    stdin = c.open({"streamtype": "stdin"})
    c.open({"streamtype": "stdout"})
    c.open({"streamtype": "stderr"})
    await c.send(stdin, b"echo to-stderr >&2\n", fin=True)
    async with asyncio.timeout(20):
        await c.pump()
    events = await node.settle(2)
    audit_id = events[-1]["auditID"]
    cast = (node.recordings / f"{audit_id}.cast").read_text().splitlines()
    body = [json.loads(line) for line in cast[1:]]
    assert [e[2] for e in body if e[1] == "i"] == ["echo to-stderr >&2\n"]
    assert "to-stderr\n" in "".join(e[2] for e in body if e[1] == "o")


def test_full_disk_losses_are_counted_logged_and_writing_resumes(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A real 64 KiB tmpfs as the audit volume: filled, every lost event is counted (and the
    first logged); once space returns, writing resumes."""
    require_root()
    vol = tmp_path / "vol"
    vol.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(vol)], check=True)
    try:
        registry = default_metrics().registry
        before = registry.get_sample_value("pykubelet_audit_events_dropped_total") or 0.0
        log = AuditLog(vol / "audit.log", max_bytes=0)
        log.start()
        filler = vol / "filler"
        try:
            with open(filler, "wb") as f:
                with contextlib.suppress(OSError):
                    f.write(b"x" * (64 << 10))
            event = {"kind": "Event", "auditID": "x" * 2000}
            for _ in range(20):
                log.emit(event)
            _wait(lambda: log.written + log.dropped >= 20)
            assert log.dropped > 0
            assert "audit event lost (write failed" in caplog.text
            after = registry.get_sample_value("pykubelet_audit_events_dropped_total")
            assert after == before + log.dropped
            filler.unlink()  # space returns
            written = log.written
            log.emit({"kind": "Event", "auditID": "after"})
            _wait(lambda: log.written > written)
        finally:
            log.close()
        assert b'"auditID":"after"' in (vol / "audit.log").read_bytes()
    finally:
        subprocess.run(["umount", str(vol)], check=False)


def _wait(cond: Callable[[], bool], timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not cond():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)


async def test_healthz_short_answer_still_authenticates_and_audits(node: Node) -> None:
    """The /healthz handler answers a plain probe without building its lines; the front door
    in front of it is unchanged: no credentials is a 401, a rogue certificate too, an admin
    gets "ok", and every one of them is on the audit record with its status."""
    anonymous = ssl.create_default_context(cafile=node.pki.ca.cert_file)
    rogue = node.pki.client_context(node.pki.rogue)
    assert (await fetch(node.port, "/healthz", ctx=anonymous)).status == 401
    assert (await fetch(node.port, "/healthz", ctx=rogue)).status == 401
    ok = await fetch(node.port, "/healthz", ctx=node.admin())
    assert (ok.status, ok.body) == (200, b"ok")
    events = await node.settle(3)
    seen = [(e["requestURI"], e["responseStatus"]["code"], e["user"]) for e in events]  # type: ignore[index]
    assert seen == [
        ("/healthz", 401, {}),
        ("/healthz", 401, {}),
        (
            "/healthz",
            200,
            {"username": "admin", "groups": ["system:masters", "system:authenticated"]},
        ),
    ]
