"""Launch helpers through one long-lived ``pkshim zygote`` instead of an exec each.

Starting a pod costs two helper launches (holder and shim). Done with ``subprocess`` each is a
fork/exec of ``pkshim`` from the agent, the dynamic loader, a second fork to daemonize and a
thread blocked until the "OK" line: about a third of the CPU of a 110-pod start. The zygote is a
small C process started once; per launch the agent sends it one datagram (the helper's argv,
optionally its environment, and one end of a fresh socket pair for the report) and the zygote
forks the helper, which reports on that socket exactly as it would on stdout. Nothing here
blocks the event loop or takes a thread.

The helpers outlive the zygote (they are in sessions of their own); the zygote exits when the
agent closes its socket, including when the agent dies. If the zygote is gone, the next launch
starts a new one.
"""

from __future__ import annotations

import array
import asyncio
import logging
import os
import socket
import subprocess
import weakref
from collections.abc import Mapping, Sequence

from pykubelet.runtime.errors import RuntimeUnavailable

__all__ = ["Zygote", "parse_report"]

log = logging.getLogger(__name__)

_MAGIC = b"pkz1"
_MAX_REQUEST = 256 * 1024  # the zygote's receive buffer (ZREQ_MAX in pkshim.c)
_TITLE_PAD = " " * 1024  # room in the zygote's argv for each helper's command line in ps
_REPORT_MAX = 512


def parse_report(line: str, mode: str) -> list[int]:
    """The pids of an ``OK <pid> [<child>]`` report; anything else raises."""
    if not line.startswith("OK"):
        raise RuntimeUnavailable(f"helper {mode} failed: {line or 'no report'}")
    return [int(x) for x in line.split()[1:]]


def encode_request(argv: Sequence[str], env: Mapping[str, str] | None) -> bytes:
    fields = [_MAGIC, b"E" if env is not None else b"-", *(os.fsencode(a) for a in argv), b""]
    if env is not None:
        fields += [os.fsencode(f"{k}={v}") for k, v in env.items()]
    if any(b"\0" in f for f in fields):
        raise RuntimeUnavailable("helper arguments and environment must not contain NUL bytes")
    return b"".join(f + b"\0" for f in fields)


def _stop(sock: socket.socket, proc: subprocess.Popen[bytes]) -> None:
    sock.close()  # the zygote reads EOF and exits
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


class Zygote:
    """Launches ``pause`` and ``run`` helpers of one ``pkshim`` binary."""

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
                start_new_session=True,  # signals to the agent's group do not reach it
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

    async def _send(self, request: bytes, fd: int) -> None:
        loop = asyncio.get_running_loop()
        fds = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", [fd]))]
        async with self._send_lock:  # one writer: add_writer keeps a single callback per fd
            for attempt in (1, 2):
                sock = self._sock or self._start()
                try:
                    while True:
                        try:
                            sock.sendmsg([request], fds)
                            return
                        except BlockingIOError:
                            ready = loop.create_future()
                            loop.add_writer(sock.fileno(), ready.set_result, None)
                            try:
                                await ready
                            finally:
                                loop.remove_writer(sock.fileno())
                except (BrokenPipeError, ConnectionError) as e:
                    self.close()  # the zygote is gone: a new one takes the request
                    if attempt == 2:
                        raise RuntimeUnavailable(f"helper zygote: {e}") from e

    async def launch(self, argv: Sequence[str], env: Mapping[str, str] | None = None) -> list[int]:
        """Launch ``pkshim pause|run ...`` (``argv[0]`` is the binary); return its report's pids."""
        mode = next((a for a in argv if a in ("pause", "run")), "helper")
        request = encode_request(argv, env)
        if len(request) > _MAX_REQUEST:
            raise RuntimeUnavailable(f"helper {mode}: arguments and environment exceed 256 KiB")
        mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            mine.setblocking(False)
            try:
                await self._send(request, theirs.fileno())
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
