"""The lean path (server/leanpath.py, listener.py): plain ``GET /healthz`` answered by the
listener itself. Checked against aiohttp's own answers to the same requests, over real TLS
and plain sockets on 127.0.0.1, with the real audit log."""

from __future__ import annotations

import asyncio
import json
import re
import socket
import ssl
import time
from pathlib import Path

import pytest

from pykubelet.server import ServerBackends
from pykubelet.server.audit import AuditLog, AuditObserver
from pykubelet.server.leanpath import LeanHead, Verdict, read_lean_head
from pykubelet.server.listener import GuardLimits
from tests.server.harness import Pki, StaticPods, TinyRuntime, running, settings_for

TARGETS = frozenset({"/healthz"})
OK_11 = (
    b"HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\n"
    b"X-Content-Type-Options: nosniff\r\nContent-Length: 2\r\nDate: D\r\n\r\nok"
)


def _backends(**kw: object) -> ServerBackends:
    return ServerBackends(pods=StaticPods(), runtime=TinyRuntime(), **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("head", "target", "version", "headers"),
    [
        (b"GET /healthz HTTP/1.1\r\nHost: n\r\n\r\n", "/healthz", "1.1", {"host": "n"}),
        (
            b"GET /healthz HTTP/1.1\r\nHost: n\r\nUser-Agent:  kube-probe/1.20 \t\r\n\r\n",
            "/healthz",
            "1.1",
            {"host": "n", "user-agent": "kube-probe/1.20"},
        ),
        (
            b"GET /healthz HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n",
            "/healthz",
            "1.0",
            {"connection": "Keep-Alive"},
        ),
        (
            b"GET /healthz HTTP/1.1\r\nHost: n\r\nX: 1\r\nx: 2\r\n\r\n",
            "/healthz",
            "1.1",
            {"host": "n", "x": "1, 2"},
        ),
    ],
)
def test_the_plainest_requests_are_recognised(
    head: bytes, target: str, version: str, headers: dict[str, str]
) -> None:
    got = read_lean_head(head + b"GET /next", TARGETS)
    assert got == (LeanHead("GET", target, version, headers), len(head))


@pytest.mark.parametrize(
    "head",
    [
        b"HEAD /healthz HTTP/1.1\r\nHost: n\r\n\r\n",
        b"POST /healthz HTTP/1.1\r\nHost: n\r\n\r\n",
        b"GET /pods HTTP/1.1\r\nHost: n\r\n\r\n",  # not a lean target here
        b"GET /healthz?verbose HTTP/1.1\r\nHost: n\r\n\r\n",
        b"GET /healthz/ HTTP/1.1\r\nHost: n\r\n\r\n",
        b"GET /healthz HTTP/2.0\r\n\r\n",
        b"GET /healthz HTTP/1.0\r\n\r\n",  # 1.0 closes after the answer: aiohttp's to do
        b"GET /healthz HTTP/1.1\r\nHost: n\r\nConnection: close\r\n\r\n",
        b"GET /healthz HTTP/1.1\r\n\r\n",  # HTTP/1.1 without Host: aiohttp's 400
        b"GET /healthz HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
        b"GET /healthz HTTP/1.1\r\nHost: n\r\nContent-Length: 0\r\n\r\n",
        b"GET /healthz HTTP/1.1\r\nHost: n\r\nTransfer-Encoding: chunked\r\n\r\n",
        b"GET /healthz HTTP/1.1\r\nHost: n\r\nUpgrade: websocket\r\n\r\n",
        b"GET /healthz HTTP/1.1\r\nHost: n\r\nExpect: 100-continue\r\n\r\n",
        b"GET /healthz HTTP/1.1\r\nHost : n\r\n\r\n",  # space before the colon
        b"GET /healthz HTTP/1.1\r\nHost: n\r\n folded\r\n\r\n",
        b"GET /healthz HTTP/1.1\r\nHost: n\r\nNoColon\r\n\r\n",
        b"GET /healthz HTTP/1.1\r\nHost: n\r\nX: \x00\r\n\r\n",
        b"GET /healthz HTTP/1.1\r\nHost: n\r\nX: caf\xc3\xa9\r\n\r\n",
        b"GET /healthz HTTP/1.1\nX: bare line feed\r\n\r\n",
        b"GET  /healthz HTTP/1.1\r\nHost: n\r\n\r\n",
        b"GET /healthz HTTP/1.1\r\nHost: n\r\n"
        + b"X: y\r\n" * 65
        + b"\r\n",  # over aiohttp's 64 fields
        b"GET /healthz HTTP/1.1\r\nHost: n\r\nX: " + b"a" * 9000 + b"\r\n\r\n",
    ],
)
def test_anything_else_is_declined(head: bytes) -> None:
    assert read_lean_head(head, TARGETS) is Verdict.DECLINE


def test_an_unfinished_head_needs_more_until_the_cap() -> None:
    for partial in (b"", b"G", b"GET ", b"GET /healthz HTTP/1.1\r\nHost: n\r\n"):
        assert read_lean_head(partial, TARGETS) is Verdict.NEED_MORE
    assert read_lean_head(b"GET /healthz HTTP/1.1\r\nX: " + b"a" * 9000, TARGETS) is (
        Verdict.DECLINE
    )


def _mask_date(data: bytes) -> bytes:
    return re.sub(rb"Date: [^\r]*", b"Date: D", data)


async def _exchange(
    port: int, request: bytes, ctx: ssl.SSLContext | None, answers: int = 1
) -> list[bytes]:
    """Send ``request`` (one or several pipelined) and read ``answers`` whole responses."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=ctx)
    try:
        writer.write(request)
        out: list[bytes] = []
        async with asyncio.timeout(10):
            for _ in range(answers):
                head = await reader.readuntil(b"\r\n\r\n")
                m = re.search(rb"Content-Length: (\d+)", head)
                assert m is not None, head
                out.append(_mask_date(head + await reader.readexactly(int(m.group(1)))))
        return out
    finally:
        writer.close()


async def test_lean_answers_are_the_bytes_aiohttp_writes(pki: Pki) -> None:
    """Each lean request next to a twin that differs only in what sends it to aiohttp (an
    empty body's Content-Length): the answers are byte for byte the same."""
    async with running(settings_for(pki), _backends()) as s:
        assert s.full_port
        admin, nobody = pki.client_context(pki.admin), pki.client_context(None)
        for head, ctx in [
            (b"GET /healthz HTTP/1.1\r\nHost: n\r\n", admin),
            (b"GET /healthz HTTP/1.0\r\nConnection: keep-alive\r\n", admin),
            (b"GET /healthz HTTP/1.1\r\nHost: n\r\n", nobody),  # 401
            (b"GET /healthz HTTP/1.1\r\nHost: n\r\nAuthorization: Bearer nope\r\n", nobody),
        ]:
            lean = await _exchange(s.full_port, head + b"\r\n", ctx)
            twin = await _exchange(s.full_port, head + b"Content-Length: 0\r\n\r\n", ctx)
            assert lean == twin, head
        lean = await _exchange(s.full_port, b"GET /healthz HTTP/1.1\r\nHost: n\r\n\r\n", admin)
        assert lean == [OK_11]  # the literal answer, not only equal to aiohttp's


async def test_pipelined_requests_are_answered_in_order_across_the_hand_over(pki: Pki) -> None:
    async with running(settings_for(pki), _backends()) as s:
        assert s.full_port
        burst = (
            b"GET /healthz HTTP/1.1\r\nHost: n\r\n\r\n" * 3
            + b"GET /healthz?verbose HTTP/1.1\r\nHost: n\r\n\r\n"  # not lean: aiohttp from here on
            + b"GET /pods HTTP/1.1\r\nHost: n\r\n\r\n"
            + b"GET /healthz HTTP/1.1\r\nHost: n\r\n\r\n"
        )
        got = await _exchange(s.full_port, burst, pki.client_context(pki.admin), answers=6)
        assert got[:3] == [OK_11] * 3
        assert got[3].endswith(
            b"\r\n\r\n[+]ping ok\n[+]log ok\n[+]syncloop ok\nhealthz check passed\n"
        )
        assert got[4].startswith(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n")
        assert b'"kind":"PodList"' in got[4]
        assert got[5] == OK_11


async def test_every_lean_request_is_audited_like_any_other(pki: Pki, tmp_path: Path) -> None:
    audit = AuditLog(tmp_path / "audit.log")
    audit.start()
    observer = AuditObserver(audit, node_name="node-a")
    try:
        async with running(settings_for(pki), _backends(observer=observer)) as s:
            assert s.full_port
            admin, nobody = pki.client_context(pki.admin), pki.client_context(None)
            ua = b"User-Agent: probe\r\n"
            await _exchange(
                s.full_port, b"GET /healthz HTTP/1.1\r\nHost: n\r\n" + ua + b"\r\n", admin, 1
            )
            await _exchange(s.full_port, b"GET /healthz HTTP/1.1\r\nHost: n\r\n\r\n" * 3, admin, 3)
            await _exchange(s.full_port, b"GET /healthz HTTP/1.1\r\nHost: n\r\n\r\n", nobody)
    finally:
        audit.close()
    events = [json.loads(line) for line in (tmp_path / "audit.log").read_text().splitlines()]
    assert len(events) == 5
    assert len({e["auditID"] for e in events}) == 5
    first, *_, refused = events
    assert first["userAgent"] == "probe" and first["requestURI"] == "/healthz"
    assert first["user"] == {
        "username": "admin",
        "groups": ["system:masters", "system:authenticated"],
    }
    assert first["objectRef"] == {
        "resource": "nodes",
        "name": "node-a",
        "apiVersion": "v1",
        "subresource": "healthz",
    }
    assert first["sourceIPs"] == ["127.0.0.1"] and first["responseStatus"]["code"] == 200
    assert first["annotations"]["authorization.k8s.io/decision"] == "allow"
    assert first["requestReceivedTimestamp"] <= first["stageTimestamp"]
    assert [e["userAgent"] for e in events[1:4]] == ["", "", ""]
    assert refused["responseStatus"]["code"] == 401 and refused["user"] == {}


async def test_a_client_that_never_reads_is_not_buffered_without_bound(pki: Pki) -> None:
    """Pipelined lean requests while never reading the answers: the server stops reading
    (the client's sends stall), and every request sent is answered, in order, once it reads."""
    async with running(settings_for(pki), _backends()) as s:
        assert s.healthz_port
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        sock.connect(("127.0.0.1", s.healthz_port))
        sock.setblocking(False)
        request = b"GET /healthz HTTP/1.1\r\nHost: n\r\n\r\n"
        chunk = request * 1000
        sent, stalled_since = 0, 0.0
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(30):
                while True:
                    try:
                        sent += sock.send(chunk[sent % len(request) :])
                        stalled_since = 0.0
                    except BlockingIOError:
                        stalled_since = stalled_since or loop.time()
                        if loop.time() - stalled_since > 1.0:
                            break  # the server has stopped reading
                        await asyncio.sleep(0.01)
            assert sent < 64 << 20, sent  # bounded: the server did stop reading
            complete = sent // len(request)  # a half request at the end is never answered
            sock.setblocking(True)
            sock.settimeout(1)
            answers = await asyncio.to_thread(_read_answers, sock, complete)
        finally:
            sock.close()
    assert answers.count(OK_HEAD) == complete
    assert answers.startswith(OK_HEAD) and answers.endswith(b"\r\n\r\nok")


OK_HEAD = b"HTTP/1.1 200 OK\r\n"


def _read_answers(sock: socket.socket, expected: int) -> bytes:
    """What the server sends until ``expected`` answers are in, then 1 s of silence (no
    more may come)."""
    data = bytearray()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            chunk = sock.recv(1 << 20)
        except TimeoutError:
            if data.count(OK_HEAD) >= expected:
                break
            continue
        if not chunk:
            break
        data += chunk
    return bytes(data)


LIMITS = GuardLimits(handshake_timeout_s=2.0, header_timeout_s=2.0, keepalive_timeout_s=1.0)


async def test_keep_alive_after_lean_answers(pki: Pki) -> None:
    """Upstream's idle timeout holds on the lean path: a connection with no complete request
    (idle, or half a request) for the keep-alive timeout is closed; one that keeps asking is
    not."""
    async with running(settings_for(pki), _backends(connection_limits=LIMITS)) as s:
        assert s.healthz_port
        port = s.healthz_port
        request = b"GET /healthz HTTP/1.1\r\nHost: n\r\n\r\n"
        for then in (b"", b"GET /heal", b"POST /healthz HTTP/1.1\r\nContent-"):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(request)
            await reader.readuntil(b"\r\n\r\nok")
            writer.write(then)
            async with asyncio.timeout(5):
                assert await reader.read() == b"", then  # closed by the server
            writer.close()
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            for _ in range(8):  # 2.4 s, more than twice the timeout
                writer.write(request)
                await reader.readuntil(b"\r\n\r\nok")
                await asyncio.sleep(0.3)
            writer.write(request)
            assert (await reader.readuntil(b"\r\n\r\nok")).startswith(b"HTTP/1.1 200 OK")
        finally:
            writer.close()
