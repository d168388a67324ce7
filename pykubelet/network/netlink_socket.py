"""A blocking ``NETLINK_ROUTE`` socket that sends a batch of requests and waits for every ack.

One ``RouteSocket`` lives in one network namespace (a socket keeps the namespace it was created
in: ``open(netns_path)`` creates it in a throwaway thread that joined the namespace, via
``pykubelet.host.netns``) and is used by one thread at a time. It blocks: callers run it in a worker
thread, never on the event loop.

A batch goes to the kernel in one ``send``; the kernel handles the messages in order and acks
each (``NLM_F_ACK``). ``call`` reads until every sequence number is acked, so the socket stays in
step even when a request fails, then raises ``NetlinkError`` for the first failure that the step
does not tolerate (``EEXIST`` where idempotence wants it, ``ENODEV`` on delete).
"""

from __future__ import annotations

import itertools
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from types import TracebackType

from pykubelet.core.errors import NotFound
from pykubelet.host.netns import NetnsError, run_in_netns
from pykubelet.network import rtnetlink as rt
from pykubelet.network.types import NetlinkError, NetworkError

__all__ = ["Outcome", "RouteSocket", "Step"]

_RECV_BYTES = 65536
_TIMEOUT_S = 10.0


@dataclass(frozen=True, slots=True, kw_only=True)
class Step:
    """One request, what it does in words (for errors), and errnos that count as success."""

    request: rt.Request
    what: str
    tolerate: frozenset[int] = frozenset()


@dataclass(frozen=True, slots=True, kw_only=True)
class Outcome:
    error: int  # 0, or a tolerated errno
    links: tuple[rt.Link, ...] = ()


def _new_socket() -> socket.socket:
    s = socket.socket(
        socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC, socket.NETLINK_ROUTE
    )
    try:
        # errors carry only the failed header plus the kernel's message text
        s.setsockopt(rt.SOL_NETLINK, rt.NETLINK_CAP_ACK, 1)
        s.setsockopt(rt.SOL_NETLINK, rt.NETLINK_EXT_ACK, 1)
        s.bind((0, 0))
        s.settimeout(_TIMEOUT_S)
    except BaseException:
        s.close()
        raise
    return s


class RouteSocket:
    def __init__(self, sock: socket.socket, *, where: str = "") -> None:
        self._sock = sock
        self._seq = itertools.count(1)
        self._where = where

    @classmethod
    def open(cls, netns_path: str = "") -> RouteSocket:
        """A socket in the host's namespace (``""``) or in ``netns_path``."""
        try:
            sock = run_in_netns(netns_path, _new_socket)
        except NotFound as e:
            raise NetworkError(f"network namespace {netns_path} does not exist") from e
        except NetnsError as e:
            raise NetworkError(str(e)) from e
        except OSError as e:
            raise NetlinkError("open a netlink socket", e.errno or 0) from e
        return cls(sock, where=f" in {netns_path}" if netns_path else "")

    def close(self) -> None:
        self._sock.close()

    def __enter__(self) -> RouteSocket:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def call(self, steps: Sequence[Step]) -> list[Outcome]:
        """Send every step in one batch; one ``Outcome`` per step, in order."""
        seqs = [next(self._seq) for _ in steps]
        try:
            data = b"".join(rt.encode(s.request, q) for s, q in zip(steps, seqs, strict=True))
        except ValueError as e:
            raise NetworkError(str(e)) from e
        by_seq = dict(zip(seqs, range(len(steps)), strict=True))
        errors: dict[int, tuple[int, str]] = {}
        links: dict[int, list[rt.Link]] = {q: [] for q in seqs}
        try:
            self._sock.send(data)
            while len(errors) < len(steps):
                for reply in rt.decode(self._sock.recv(_RECV_BYTES)):
                    if reply.seq not in by_seq:
                        continue  # an answer to an earlier, abandoned batch
                    if isinstance(reply, rt.Ack):
                        errors[reply.seq] = (reply.error, reply.message)
                    elif isinstance(reply, rt.Link):
                        links[reply.seq].append(reply)
        except TimeoutError as e:
            raise NetlinkError(f"{steps[0].what}{self._where}: no answer from the kernel") from e
        except OSError as e:
            raise NetlinkError(f"{steps[0].what}{self._where}", e.errno or 0) from e
        except rt.NetlinkDecodeError as e:
            raise NetlinkError(f"{steps[0].what}{self._where}", 0, str(e)) from e
        out = []
        for step, q in zip(steps, seqs, strict=True):
            err, message = errors[q]
            if err and err not in step.tolerate:
                raise NetlinkError(f"{step.what}{self._where}", err, message)
            out.append(Outcome(error=err, links=tuple(links[q])))
        return out
