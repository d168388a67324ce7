"""Test doubles that do the real thing: an exec runner that runs host processes, a metrics
recorder and a probe listener that keep what they were told, and HTTP servers on sockets."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from pykubelet.api import Pod
from pykubelet.host.netns import socket_in_netns
from pykubelet.podspec.prober import ProbeChange
from pykubelet.runtime import ExecResult


class HostExecRunner:
    """``exec_sync`` as real host processes (the container id is ignored); kills on cancel."""

    def __init__(self) -> None:
        self.pids: list[int] = []

    async def exec_sync(
        self, container_id: str, cmd: Sequence[str], timeout_s: float | None = None
    ) -> ExecResult:
        proc = await asyncio.create_subprocess_exec(
            *cmd, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
        )
        self.pids.append(proc.pid)
        try:
            async with asyncio.timeout(timeout_s):
                out, err = await proc.communicate()
        except BaseException:
            if proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await proc.wait()
            raise
        assert proc.returncode is not None
        return ExecResult(exit_code=proc.returncode, stdout=out, stderr=err)


@dataclass
class Recorder:
    runs: list[tuple[str, str, str]] = field(default_factory=list)  # (pod, probe_type, result)

    def record_probe(
        self,
        *,
        probe_type: str,
        result: str,
        namespace: str,
        pod: str,
        pod_uid: str,
        container: str,
    ) -> None:
        self.runs.append((pod, probe_type, result))

    def count(self, pod: str, probe_type: str, result: str | None = None) -> int:
        return sum(
            1
            for p, t, r in self.runs
            if p == pod and t == probe_type and (result is None or r == result)
        )

    def reached(self, pod: str, probe_type: str, n: int) -> Callable[[], bool]:
        """A ``wait_until`` condition: at least ``n`` runs (``n`` bound now, not at call time)."""
        return lambda: self.count(pod, probe_type) >= n


@dataclass
class Listener:
    changes: list[ProbeChange] = field(default_factory=list)

    def probe_changed(self, change: ProbeChange) -> None:
        self.changes.append(change)


async def wait_until(cond: Callable[[], bool], timeout_s: float = 15.0) -> None:
    """Poll a condition with a bounded deadline (never a fixed sleep-then-assert)."""
    async with asyncio.timeout(timeout_s):
        while True:
            if cond():
                return
            await asyncio.sleep(0.01)


def make_pod(name: str, container: dict[str, object], grace: int = 30) -> Pod:
    return Pod.from_dict(
        {
            "metadata": {"name": name, "namespace": "default", "uid": f"uid-{name}"},
            "spec": {
                "containers": [{"name": "app", "image": "busybox:1.35", **container}],
                "terminationGracePeriodSeconds": grace,
            },
        }
    )


@dataclass
class HttpServer:
    port: int
    requests: list[bytes] = field(default_factory=list)


Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@contextlib.asynccontextmanager
async def serve(netns_path: str, handler: Handler) -> AsyncIterator[int]:
    """A TCP server on 127.0.0.1 inside ``netns_path`` ("" = host); yields its port."""
    sock = socket_in_netns(netns_path, socket.AF_INET)
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    server = await asyncio.start_server(handler, sock=sock)
    try:
        yield int(sock.getsockname()[1])
    finally:
        server.close()
        await server.wait_closed()


def http_responder(status: int, seen: list[bytes], body: bytes = b"ok") -> Handler:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        seen.append(head)
        writer.write(f"HTTP/1.1 {status} X\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body)
        await writer.drain()
        writer.close()

    return handle


def hanging_responder(accepted: list[int]) -> Handler:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(1)
        try:
            await reader.read()  # never answers; waits for the client to give up
        finally:
            writer.close()

    return handle
