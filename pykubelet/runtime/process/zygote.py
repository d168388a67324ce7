"""Launch helpers through one long-lived ``pkshim zygote`` instead of an exec each.

Starting a pod costs two helper launches (holder and shim), and each ``kubectl exec`` or exec
probe one ``pkshim enter``. Done with ``subprocess`` or ``posix_spawn`` each is a fork/exec of
``pkshim`` from the agent (blocking its event loop until the child has exec'd) and the dynamic
loader (costly in VMs, where its CPU feature detection traps); pause and run also need a second
fork to daemonize and a thread blocked until the "OK" line: about a third of the CPU of a
110-pod start, and half of an exec's helper cost. The zygote is a small C process started
once; per launch the agent sends it one datagram (the helper's argv, optionally its
environment, one end of a fresh socket pair for the report and, for enter, the exec's stdio
pipe ends) and the zygote forks the helper. Nothing here blocks the event loop or takes a
thread.

pause and run report on that socket exactly as they would on stdout. enter (``Zygote.enter``,
``ZygoteChild``) leads a session of its own, as ``spawn`` would start it, and reports twice: "OK
<pid>" with a pidfd of itself, then "EXIT <code>" or "SIGNAL <n>" when its command ends. The
agent pumps the pipes at once, without waiting for the "OK"; only a kill needs the pidfd: a
SIGTERM through it makes the helper SIGKILL its own process group (the command with whatever
it forked). The helper cannot be reaped while it runs, so neither its pid nor its group id can
have been reused: no signal reaches a recycled process.

The helpers outlive the zygote (they are in sessions of their own); the zygote exits when the
agent closes its socket, including when the agent dies. If the zygote is gone, the next launch
starts a new one.
"""

from __future__ import annotations

import array
import asyncio
import contextlib
import logging
import os
import signal
import socket
import subprocess
import weakref
from collections.abc import Mapping, Sequence

from pykubelet.runtime.errors import RuntimeUnavailable
from pykubelet.runtime.process.spawn import Child, ExecPipes, wait_ready

__all__ = ["RequestTooLarge", "Zygote", "ZygoteChild", "parse_report"]

log = logging.getLogger(__name__)

_MAGIC = b"pkz1"
_MAX_REQUEST = 256 * 1024  # the zygote's receive buffer (ZREQ_MAX in pkshim.c)
_MAX_FIELDS = 8191  # the fields it splits a request into (zygote_child in pkshim.c)
_TITLE_PAD = " " * 1024  # room in the zygote's argv for each helper's command line in ps
_REPORT_MAX = 512


class RequestTooLarge(RuntimeUnavailable):
    """Arguments and environment beyond what one zygote request holds (an exec falls back to
    ``posix_spawn``, which takes up to the kernel's ARG_MAX)."""


def parse_report(line: str, mode: str) -> list[int]:
    """The pids of an ``OK <pid> [<child>]`` report; anything else raises."""
    if not line.startswith("OK"):
        raise RuntimeUnavailable(f"helper {mode} failed: {line or 'no report'}")
    return [int(x) for x in line.split()[1:]]


def _mode(argv: Sequence[str]) -> str:
    return next((a for a in argv if a in ("pause", "run", "enter")), "helper")


def encode_request(argv: Sequence[str], env: Mapping[str, str] | None) -> bytes:
    mode = _mode(argv)
    head = b"%s%d" % (b"E" if env is not None else b"-", len(argv))  # argv may hold ""
    fields = [_MAGIC, head, *(os.fsencode(a) for a in argv)]
    if env is not None:
        fields += [os.fsencode(f"{k}={v}") for k, v in env.items()]
    if any(b"\0" in f for f in fields):
        raise RuntimeUnavailable("helper arguments and environment must not contain NUL bytes")
    request = b"".join(f + b"\0" for f in fields)
    if len(request) > _MAX_REQUEST or len(fields) > _MAX_FIELDS:
        raise RequestTooLarge(
            f"helper {mode}: arguments and environment exceed 256 KiB or {_MAX_FIELDS} entries"
        )
    return request


def _stop(sock: socket.socket, proc: subprocess.Popen[bytes]) -> None:
    sock.close()  # the zygote reads EOF and exits
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


class Zygote:
    """Launches ``pause``, ``run`` and ``enter`` helpers of one ``pkshim`` binary."""

    def __init__(self, binary: str) -> None:
        self._binary = binary
        self._sock: socket.socket | None = None
        self._finalizer: weakref.finalize[[socket.socket, subprocess.Popen[bytes]], Zygote] | None
        self._finalizer = None
        self._send_lock = asyncio.Lock()

    def _start(self) -> socket.socket:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            proc = subprocess.Popen(
                [self._binary, "zygote", _TITLE_PAD],
                stdin=theirs.fileno(),
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                # its own process group (signals to the agent's do not reach it) but the
                # agent's session: with autogroup scheduling each session is a scheduling
                # group, and the zygote woken from another one waited much longer for a CPU
                # on a busy machine (docs/performance.md, "Execs forked by the zygote")
                process_group=0,
            )
        except OSError as e:
            ours.close()
            raise RuntimeUnavailable(f"cannot start the helper zygote: {e}") from e
        finally:
            theirs.close()
        ours.setblocking(False)
        self._sock = ours
        self._finalizer = weakref.finalize(self, _stop, ours, proc)
        log.debug("helper zygote %d started", proc.pid)
        return ours

    def close(self) -> None:
        """Stop the zygote (the helpers it launched keep running)."""
        if self._finalizer is not None:
            self._finalizer()
        self._sock = None
        self._finalizer = None

    async def _send(self, request: bytes, fds: Sequence[int]) -> None:
        ancillary = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds))]
        async with self._send_lock:  # one writer: add_writer keeps a single callback per fd
            for attempt in (1, 2):
                sock = self._sock or self._start()
                try:
                    while True:
                        try:
                            sock.sendmsg([request], ancillary)
                            return
                        except BlockingIOError:
                            await wait_ready(sock.fileno(), write=True)
                except (BrokenPipeError, ConnectionError) as e:
                    self.close()  # the zygote is gone: a new one takes the request
                    if attempt == 2:
                        raise RuntimeUnavailable(f"helper zygote: {e}") from e

    async def launch(self, argv: Sequence[str], env: Mapping[str, str] | None = None) -> list[int]:
        """Launch ``pkshim pause|run ...`` (``argv[0]`` is the binary); return its report's pids."""
        mode = _mode(argv)
        request = encode_request(argv, env)
        mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            mine.setblocking(False)
            try:
                await self._send(request, [theirs.fileno()])
            finally:
                theirs.close()  # the helper holds the only other end now
            loop = asyncio.get_running_loop()
            data = b""
            while not data.endswith(b"\n") and len(data) < _REPORT_MAX:
                chunk = await loop.sock_recv(mine, _REPORT_MAX)
                if not chunk:
                    break
                data += chunk
        finally:
            mine.close()
        line = data.decode(errors="replace").strip()
        return parse_report(line or "ERR helper died before it was ready", mode)

    async def enter(self, argv: Sequence[str], env: Mapping[str, str], *, stdin: bool) -> Child:
        """Launch ``pkshim enter ... -- CMD`` (``argv[0]`` is the binary) with pipes on 1 and 2,
        and on 0 when ``stdin`` (else /dev/null), as ``spawn`` would; returns as soon as the
        request is sent (the helper's "OK" comes later, ``ZygoteChild``)."""
        request = encode_request(argv, env)
        pipes = ExecPipes.open(stdin=stdin)
        try:
            mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        except BaseException:
            pipes.close_ours()
            pipes.close_child_ends()
            raise
        null = -1
        try:
            mine.setblocking(False)
            if pipes.child_stdin is None:
                null = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
            child_in = pipes.child_stdin if pipes.child_stdin is not None else null
            fds = [theirs.fileno(), child_in, pipes.child_stdout, pipes.child_stderr]
            await self._send(request, fds)
        except BaseException:
            mine.close()
            pipes.close_ours()
            raise
        finally:
            theirs.close()  # the helper holds the only other ends now
            pipes.close_child_ends()
            if null >= 0:
                os.close(null)
        return ZygoteChild(mine, pipes)


class ZygoteChild(Child):
    """An ``enter`` launched by the zygote, followed through its report socket (one record
    each: "OK <pid>" with its pidfd, then "EXIT <code>" or "SIGNAL <n>"; "ERR ..." if it could
    not start). Its end is the socket's EOF; an end without "EXIT"/"SIGNAL" is the SIGKILL of
    its process group (``kill``), as ``SpawnedChild`` would see it."""

    def __init__(self, report: socket.socket, pipes: ExecPipes) -> None:
        super().__init__(pipes)
        loop = asyncio.get_running_loop()
        self._report = report
        self.pid: int | None = None
        self._pidfd = -1
        self._error = ""
        self._ended: int | None = None  # from its last record
        self._started = loop.create_future()  # its pidfd came, or it ended without one
        self._done = loop.create_future()  # the report's EOF
        self._following = False

    def _follow(self) -> None:
        """Start reading the report: only once the agent waits for the end or must kill, so
        the "OK" does not wake the agent in the middle of a short command (it is read with
        "EXIT" at the end; the records wait in the socket)."""
        if not self._following:
            self._following = True
            asyncio.get_running_loop().add_reader(self._report.fileno(), self._readable)

    def _readable(self) -> None:
        try:
            data, ancillary, _flags, _addr = self._report.recvmsg(
                _REPORT_MAX, socket.CMSG_SPACE(4), socket.MSG_CMSG_CLOEXEC
            )
        except BlockingIOError:
            return
        except OSError:
            data, ancillary = b"", []
        for level, kind, payload in ancillary:
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                fds = array.array("i")
                fds.frombytes(payload[: len(payload) - len(payload) % fds.itemsize])
                for fd in fds:
                    if self._pidfd < 0:
                        self._pidfd = fd
                    else:
                        os.close(fd)
        if data:
            self._record(data.decode(errors="replace").strip())
            return
        asyncio.get_running_loop().remove_reader(self._report.fileno())
        self._report.close()
        if self._ended is not None:
            self.returncode = self._ended
        elif self.pid is not None:
            self.returncode = -signal.SIGKILL  # killed with its group before it could tell
        elif not self._error:
            self._error = "helper enter died before it was ready"
        for fut in (self._started, self._done):
            if not fut.done():
                fut.set_result(None)

    def _record(self, line: str) -> None:
        word, _, arg = line.partition(" ")
        if word == "OK" and self.pid is None:
            self.pid = int(arg)
            if not self._started.done():
                self._started.set_result(None)
        elif word == "EXIT":
            self._ended = int(arg)
        elif word == "SIGNAL":
            self._ended = -int(arg)
        else:
            self._error = line

    async def wait(self) -> int:
        self._follow()
        await asyncio.shield(self._done)
        if self._pidfd >= 0:
            os.close(self._pidfd)
            self._pidfd = -1
        if self.returncode is None:
            raise RuntimeUnavailable(f"helper enter failed: {self._error}")
        return self.returncode

    async def kill(self) -> None:
        self._follow()
        if not self._done.done():
            await asyncio.shield(self._started)  # its pidfd (or its end)
            if self._pidfd >= 0 and not self._done.done():
                with contextlib.suppress(ProcessLookupError):
                    signal.pidfd_send_signal(self._pidfd, signal.SIGTERM)
        with contextlib.suppress(RuntimeUnavailable):
            await self.wait()
