"""A test-local runtime: commands run as local subprocesses (a PTY for tty), ports on 127.0.0.1.

It implements the parts of ``Runtime``/``StreamingRuntime`` the streaming handlers use, with
real processes and real sockets, so the handlers are exercised end to end without namespaces.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import struct
import termios
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any

from pykubelet.api import Pod
from pykubelet.api.status import ContainerStatusView, PodStatus
from pykubelet.runtime.errors import ContainerNotFound, SandboxNotFound
from pykubelet.runtime.types import (
    ContainerState,
    ContainerStatus,
    ExecResult,
    SandboxState,
    SandboxStatus,
    StreamIO,
    TerminalSize,
)


class LocalPortConnection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._r, self._w = reader, writer

    async def read(self, n: int = 65536) -> bytes:
        try:
            return await self._r.read(n)
        except ConnectionError:
            return b""

    async def write(self, data: bytes) -> None:
        self._w.write(data)
        await self._w.drain()

    async def close_write(self) -> None:
        if self._w.can_write_eof():
            with contextlib.suppress(OSError):
                self._w.write_eof()

    async def close(self) -> None:
        self._w.close()
        with contextlib.suppress(OSError):
            await self._w.wait_closed()


async def _pump_in(
    source: AsyncIterator[bytes] | None, write: Callable[[bytes], Any], close: Callable[[], Any]
) -> None:
    try:
        if source is not None:
            async for chunk in source:
                await write(chunk)
    except (BrokenPipeError, ConnectionResetError):
        pass
    finally:
        with contextlib.suppress(OSError):
            await close()


async def _pump_out(
    reader: asyncio.StreamReader, sink: Callable[[bytes], Awaitable[None]] | None
) -> None:
    while True:
        try:
            data = await reader.read(1 << 20)
        except OSError:  # EIO from a PTY master once the slave side is gone
            return
        if not data:
            return
        if sink is not None:
            await sink(data)


_F_SETPIPE_SZ = 1031


def _widen_pipes(proc: asyncio.subprocess.Process) -> None:
    """1 MiB pipes instead of 64 KiB: fewer wake-ups per megabyte on the echo benchmark."""
    for stream in (proc.stdin, proc.stdout, proc.stderr):
        transport = getattr(stream, "transport", None) or getattr(stream, "_transport", None)
        pipe = transport.get_extra_info("pipe") if transport is not None else None
        if pipe is not None:
            with contextlib.suppress(OSError, ValueError):  # already closed: nothing to widen
                fcntl.fcntl(pipe.fileno(), _F_SETPIPE_SZ, 1 << 20)


class LocalRuntime:
    """Container ids are accepted as given; ``known_ids`` limits them when set."""

    def __init__(self, known_ids: Sequence[str] = ("c1",), sandbox_uid: str = "uid-1") -> None:
        self.known_ids = set(known_ids)
        self.sandbox_uid = sandbox_uid
        self.resizes: list[TerminalSize] = []
        self.states: dict[str, ContainerState] = {}
        self.running: set[asyncio.subprocess.Process] = set()

    def _check(self, container_id: str) -> None:
        if container_id not in self.known_ids:
            raise ContainerNotFound(f"container {container_id!r} not found")

    async def exec_sync(
        self, container_id: str, cmd: Sequence[str], timeout_s: float | None = None
    ) -> ExecResult:
        self._check(container_id)
        proc = await asyncio.create_subprocess_exec(
            *cmd, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
        )
        out, err = await proc.communicate()
        return ExecResult(exit_code=proc.returncode or 0, stdout=out, stderr=err)

    async def container_status(self, container_id: str) -> ContainerStatus:
        self._check(container_id)
        return ContainerStatus(
            id=container_id,
            sandbox_id="sandbox-1",
            name=container_id,
            attempt=0,
            state=self.states.get(container_id, ContainerState.RUNNING),
            image="busybox",
        )

    async def list_pod_sandboxes(self) -> Sequence[SandboxStatus]:
        return [
            SandboxStatus(
                id="sandbox-1",
                name="p",
                namespace="default",
                uid=self.sandbox_uid,
                attempt=0,
                state=SandboxState.READY,
                created_at=time.time(),
            )
        ]

    async def exec(self, container_id: str, cmd: Sequence[str], io: StreamIO) -> int:
        self._check(container_id)
        if io.tty:
            return await self._exec_tty(cmd, io)
        proc = await asyncio.create_subprocess_exec(
            *cmd,
            stdin=asyncio.subprocess.PIPE if io.stdin is not None else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        self.running.add(proc)
        _widen_pipes(proc)
        try:
            async with asyncio.TaskGroup() as tg:
                if io.stdin is not None and proc.stdin is not None:
                    stdin = proc.stdin

                    async def w(data: bytes) -> None:
                        stdin.write(data)
                        await stdin.drain()

                    async def c() -> None:
                        stdin.close()

                    feeder = tg.create_task(_pump_in(io.stdin, w, c))
                assert proc.stdout is not None and proc.stderr is not None
                tg.create_task(_pump_out(proc.stdout, io.stdout))
                tg.create_task(_pump_out(proc.stderr, io.stderr))
                rc = await proc.wait()
                if io.stdin is not None:
                    feeder.cancel()
            return rc
        finally:
            # Close the pipes first: a paused stdout pipe (its reader cancelled mid-stream) never
            # sees EOF, and ``wait()`` waits for every pipe as well as the exit status.
            proc._transport.close()  # type: ignore[attr-defined]
            await proc.wait()
            self.running.discard(proc)

    async def _exec_tty(self, cmd: Sequence[str], io: StreamIO) -> int:
        master, slave = os.openpty()
        proc = await asyncio.create_subprocess_exec(
            *cmd, stdin=slave, stdout=slave, stderr=slave, start_new_session=True
        )
        os.close(slave)
        self.running.add(proc)
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader()
        transport, _ = await loop.connect_read_pipe(
            lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(master, "rb", buffering=0)
        )
        wfd = os.dup(master)

        async def w(data: bytes) -> None:
            os.write(wfd, data)

        async def c() -> None:
            os.write(wfd, b"\x04")

        async def resize() -> None:
            if io.resize is not None:
                async for size in io.resize:
                    self.resizes.append(size)
                    fcntl.ioctl(
                        wfd, termios.TIOCSWINSZ, struct.pack("HHHH", size.height, size.width, 0, 0)
                    )

        try:
            async with asyncio.TaskGroup() as tg:
                feeder = tg.create_task(_pump_in(io.stdin, w, c)) if io.stdin is not None else None
                resizer = tg.create_task(resize())
                tg.create_task(_pump_out(reader, io.stdout))
                rc = await proc.wait()
                if feeder is not None:
                    feeder.cancel()
                resizer.cancel()
            return rc
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
            self.running.discard(proc)
            transport.close()
            os.close(wfd)

    async def attach(self, container_id: str, io: StreamIO) -> None:
        self._check(container_id)
        await self.exec(container_id, ["cat"], io)

    async def port_forward(self, sandbox_id: str, port: int) -> LocalPortConnection:
        if sandbox_id != "sandbox-1":
            raise SandboxNotFound(sandbox_id)
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        return LocalPortConnection(reader, writer)


class StaticPods:
    """A PodLister over a fixed list of pods."""

    def __init__(self, pods: Sequence[Pod]) -> None:
        self._pods = list(pods)

    def list_pods(self) -> Sequence[Pod]:
        return self._pods

    def get_pod(self, namespace: str, name: str) -> Pod | None:
        for p in self._pods:
            if p.meta.namespace == namespace and p.meta.name == name:
                return p
        return None

    def sync_loop_healthy(self) -> bool:
        return True


def make_pod(
    name: str = "p",
    uid: str = "uid-1",
    containers: Sequence[tuple[str, str, bool]] = (("main", "local://c1", False),),
) -> Pod:
    """A running pod whose containers map to local container ids: (name, containerID, tty)."""
    pod = Pod.from_dict(
        {
            "metadata": {"name": name, "namespace": "default", "uid": uid},
            "spec": {
                "containers": [
                    {"name": n, "image": "busybox", "tty": tty, "stdin": tty}
                    for n, _, tty in containers
                ]
            },
        }
    )
    statuses = tuple(
        ContainerStatusView(name=n, image="busybox", container_id=cid) for n, cid, _ in containers
    )
    return pod.with_status(PodStatus(phase="Running", container_statuses=statuses))
