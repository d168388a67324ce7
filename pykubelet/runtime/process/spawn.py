"""Start an exec's helper without asyncio's subprocess machinery.

Every ``kubectl exec`` and exec probe starts one ``pkshim enter``. Through
``asyncio.create_subprocess_exec`` that costs about a millisecond of the agent's CPU on top of
the helper itself (a fork/exec that closes every fd, a child-watcher thread per process in
Python 3.11, transports and protocols per pipe). Its pipes here are plain non-blocking fds read
and written from the loop (``ExecPipes``, ``pump_in``, ``pump_out``), and ``Child`` is what the
exec code holds, however the helper was started:

* by the compiled helper's zygote (``zygote.py``, ``ZygoteChild``): a fork of an already loaded
  process, no exec, the usual path;
* by ``spawn`` here (``SpawnedChild``): ``posix_spawn`` (glibc's is a vfork; the event loop
  waits until the child has exec'd), its end watched through a pidfd. It serves the Python
  fallback helper (``native/pyshim.py``), which has no zygote.

exec with a TTY (``execs._exec_tty``) stays on ``asyncio.create_subprocess_exec``: the terminal
becomes the child's controlling one in a ``preexec_fn`` for containers without a root of their
own, and an interactive session's launch cost does not matter.

A spawned child gets fds 0-2 only by relying on the agent's fds being close-on-exec (Python's
default); the C helper also closes anything above 2 before it enters the container.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import os
import signal
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass

__all__ = [
    "Child",
    "ExecPipes",
    "SpawnedChild",
    "pump_in",
    "pump_out",
    "read_all",
    "spawn",
    "wait_ready",
]

# what subprocess resets (restore_signals): the agent ignores SIGPIPE, the command must not
_RESET = (signal.SIGPIPE, signal.SIGXFSZ)


@dataclass
class ExecPipes:
    """An exec's pipes: our ends (non-blocking) and the child's (its 0, 1, 2; stdin None when
    it reads /dev/null). Non-blocking only on our side: O_NONBLOCK belongs to the open pipe
    end, which the child would share, and a command writing into a full pipe would get EAGAIN.
    Every end is close-on-exec."""

    stdin: int | None
    stdout: int
    stderr: int
    child_stdin: int | None
    child_stdout: int
    child_stderr: int

    @classmethod
    def open(cls, *, stdin: bool) -> ExecPipes:
        ends: list[int] = []
        try:
            for _ in range(3 if stdin else 2):
                ends += os.pipe2(os.O_CLOEXEC)
        except BaseException:
            for fd in ends:
                os.close(fd)
            raise
        out_r, out_w, err_r, err_w = ends[:4]
        in_r: int | None = ends[4] if stdin else None
        in_w: int | None = ends[5] if stdin else None
        for ours in (out_r, err_r, in_w):
            if ours is not None:
                os.set_blocking(ours, False)
        return cls(in_w, out_r, err_r, in_r, out_w, err_w)

    def close_child_ends(self) -> None:
        """Once the child holds its ends (or will never start)."""
        for fd in (self.child_stdin, self.child_stdout, self.child_stderr):
            if fd is not None:
                os.close(fd)

    def close_ours(self) -> None:
        for fd in (self.stdin, self.stdout, self.stderr):
            if fd is not None:
                os.close(fd)


class Child(abc.ABC):
    """A started exec helper leading its own session (its command in its process group): our
    ends of its pipes, and its return code once ``wait`` has seen its end."""

    def __init__(self, pipes: ExecPipes) -> None:
        self.stdin = pipes.stdin  # None: it reads /dev/null (or ``pump_in`` closed it)
        self.stdout = pipes.stdout
        self.stderr = pipes.stderr
        self.returncode: int | None = None

    @abc.abstractmethod
    async def wait(self) -> int:
        """Its return code as ``subprocess`` gives it (negative: the signal that ended it)."""

    @abc.abstractmethod
    async def kill(self) -> None:
        """SIGKILL it with its process group, never a recycled pid or group, then wait for
        its end (for timeouts and cancelled sessions)."""

    def close(self) -> None:
        for fd in (self.stdin, self.stdout, self.stderr):
            if fd is not None:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self.stdin = None


class SpawnedChild(Child):
    """A child of ours started by ``spawn``; its pid stays ours until ``wait`` reaps it, so
    signalling it (and its process group, whose id is its pid) can never hit a recycled pid."""

    def __init__(self, pid: int, pidfd: int, pipes: ExecPipes) -> None:
        super().__init__(pipes)
        self.pid = pid
        self.pidfd = pidfd

    async def wait(self) -> int:
        while self.returncode is None:
            await wait_ready(self.pidfd, write=False)  # readable once it has exited
            self.returncode = _reap(self.pid)
        if self.pidfd >= 0:
            os.close(self.pidfd)
            self.pidfd = -1
        return self.returncode

    async def kill(self) -> None:
        if self.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.pid, signal.SIGKILL)
            await asyncio.shield(self.wait())


def spawn(argv: Sequence[str], env: Mapping[str, str], *, stdin: bool) -> Child:
    """Start ``argv`` (``argv[0]`` an absolute path) with ``posix_spawn`` in a new session with
    pipes on 1 and 2, and on 0 when ``stdin`` (else /dev/null). Blocks the event loop until the
    child has exec'd: the zygote (``Zygote.enter``) is the launch path that does not."""
    pipes = ExecPipes.open(stdin=stdin)
    actions: list[tuple[int, ...] | tuple[int, int, str, int, int]] = []
    if pipes.child_stdin is not None:
        actions.append((os.POSIX_SPAWN_DUP2, pipes.child_stdin, 0))
    else:
        actions.append((os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0))
    actions += [(os.POSIX_SPAWN_DUP2, pipes.child_stdout, 1)]
    actions += [(os.POSIX_SPAWN_DUP2, pipes.child_stderr, 2)]
    try:
        pid = os.posix_spawn(
            argv[0], list(argv), dict(env), file_actions=actions, setsid=True, setsigdef=_RESET
        )
    except BaseException:
        pipes.close_ours()
        raise
    finally:
        pipes.close_child_ends()
    try:
        pidfd = os.pidfd_open(pid)
    except OSError:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        pipes.close_ours()
        raise
    return SpawnedChild(pid, pidfd, pipes)


def _reap(pid: int) -> int | None:
    """The exited child's return code (WNOHANG: never blocks), None if it still runs."""
    done, status = os.waitpid(pid, os.WNOHANG)
    return os.waitstatus_to_exitcode(status) if done else None


async def wait_ready(fd: int, *, write: bool) -> None:
    """Until ``fd`` is readable (or writable), on the event loop."""
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
            await wait_ready(fd, write=False)
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
                    await wait_ready(fd, write=True)
    except (BrokenPipeError, ConnectionError):
        return
    finally:
        child.stdin = None
        os.close(fd)
