"""Start an exec's helper without asyncio's subprocess machinery.

Every ``kubectl exec`` and exec probe starts one ``pkshim enter``. Through
``asyncio.create_subprocess_exec`` that costs about a millisecond of the agent's CPU on top of
the helper itself (a fork/exec that closes every fd, a child-watcher thread per process in
Python 3.11, transports and protocols per pipe). Here the child is started with
``posix_spawn`` (glibc's is a vfork), its end is watched through a pidfd on the event loop,
and its pipes are plain non-blocking fds read and written from the loop.

The child gets fds 0-2 only by relying on the agent's fds being close-on-exec (Python's
default); the C helper also closes anything above 2 before it enters the container.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass

__all__ = ["Child", "pump_in", "pump_out", "read_all", "spawn"]

# what subprocess resets (restore_signals): the agent ignores SIGPIPE, the command must not
_RESET = (signal.SIGPIPE, signal.SIGXFSZ)


@dataclass
class Child:
    """A spawned process leading its own session; its pid stays ours until ``wait`` reaps it,
    so signalling it can never hit a recycled pid."""

    pid: int
    pidfd: int
    stdin: int | None  # our end of its stdin pipe (None: /dev/null)
    stdout: int
    stderr: int
    returncode: int | None = None

    async def wait(self) -> int:
        """Its return code as ``subprocess`` gives it (negative: the signal that ended it)."""
        while self.returncode is None:
            await _ready(self.pidfd, write=False)  # readable once it has exited
            self.returncode = _reap(self.pid)
        if self.pidfd >= 0:
            os.close(self.pidfd)
            self.pidfd = -1
        return self.returncode

    async def kill(self) -> None:
        """SIGKILL its process group, then reap it (for timeouts and cancelled sessions)."""
        if self.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.pid, signal.SIGKILL)
            await asyncio.shield(self.wait())

    def close(self) -> None:
        for fd in (self.stdin, self.stdout, self.stderr):
            if fd is not None:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self.stdin = None


def spawn(argv: Sequence[str], env: Mapping[str, str], *, stdin: bool) -> Child:
    """Start ``argv`` (``argv[0]`` an absolute path) in a new session with pipes on 1 and 2,
    and on 0 when ``stdin`` (else /dev/null)."""
    # non-blocking only on our side: O_NONBLOCK belongs to the open pipe end, which the child
    # would share, and a command writing into a full pipe would get EAGAIN
    out_r, out_w = os.pipe2(os.O_CLOEXEC)
    err_r, err_w = os.pipe2(os.O_CLOEXEC)
    os.set_blocking(out_r, False)
    os.set_blocking(err_r, False)
    in_r = in_w = None
    actions: list[tuple[int, ...] | tuple[int, int, str, int, int]] = []
    if stdin:
        in_r, in_w = os.pipe2(os.O_CLOEXEC)
        os.set_blocking(in_w, False)
        actions.append((os.POSIX_SPAWN_DUP2, in_r, 0))
    else:
        actions.append((os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0))
    actions += [(os.POSIX_SPAWN_DUP2, out_w, 1), (os.POSIX_SPAWN_DUP2, err_w, 2)]
    try:
        pid = os.posix_spawn(
            argv[0], list(argv), dict(env), file_actions=actions, setsid=True, setsigdef=_RESET
        )
    except BaseException:
        for fd in (out_r, err_r, in_w):
            if fd is not None:
                os.close(fd)
        raise
    finally:
        for fd in (out_w, err_w, in_r):
            if fd is not None:
                os.close(fd)
    try:
        pidfd = os.pidfd_open(pid)
    except OSError:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        raise
    return Child(pid, pidfd, in_w, out_r, err_r)


def _reap(pid: int) -> int | None:
    """The exited child's return code (WNOHANG: never blocks), None if it still runs."""
    done, status = os.waitpid(pid, os.WNOHANG)
    return os.waitstatus_to_exitcode(status) if done else None


async def _ready(fd: int, *, write: bool) -> None:
    loop = asyncio.get_running_loop()
    fut = loop.create_future()

    def done() -> None:
        if not fut.done():
            fut.set_result(None)

    (loop.add_writer if write else loop.add_reader)(fd, done)
    try:
        await fut
    finally:
        (loop.remove_writer if write else loop.remove_reader)(fd)


async def pump_out(fd: int, sink: Callable[[bytes], Awaitable[None]] | None) -> None:
    """Read ``fd`` to its end, awaiting ``sink`` with each chunk (back-pressure)."""
    while True:
        try:
            data = os.read(fd, 65536)
        except BlockingIOError:
            await _ready(fd, write=False)
            continue
        if not data:
            return
        if sink is not None:
            await sink(data)


async def read_all(fd: int) -> bytes:
    chunks: list[bytes] = []

    async def keep(data: bytes) -> None:
        chunks.append(data)

    await pump_out(fd, keep)
    return b"".join(chunks)


async def pump_in(source: AsyncIterator[bytes], child: Child) -> None:
    """Write ``source`` to the child's stdin, then close it (EOF); a child that stopped
    reading just ends the feed."""
    fd = child.stdin
    assert fd is not None
    try:
        async for chunk in source:
            view = memoryview(chunk)
            while view:
                try:
                    view = view[os.write(fd, view) :]
                except BlockingIOError:
                    await _ready(fd, write=True)
    except (BrokenPipeError, ConnectionError):
        return
    finally:
        child.stdin = None
        os.close(fd)
