"""The node's address (``status.hostIP``, host-network pod IPs): ``--node-ip`` or detected.

As upstream's kubelet: a given ``--node-ip`` must be an address of this host (checked by binding
to it, which only works for local addresses), not multicast or link-local; ``0.0.0.0`` / ``::``
(or nothing) means "detect", preferring that family. Unlike upstream, loopback is accepted (a
standalone node serving only on 127.0.0.1). Detection
takes the source address the kernel picks for the default route (a connected UDP socket: no
packet is sent), then the host name's addresses, then loopback. No ``ip`` exec, no netlink dump.
"""

from __future__ import annotations

import contextlib
import ipaddress
import socket

from pykubelet.core.errors import InvalidInput

__all__ = ["choose_node_ip", "default_route_source"]

# documentation addresses (RFC 5737 / 3849): only used to ask for a route, never contacted
_PROBE: dict[int, str] = {socket.AF_INET: "192.0.2.1", socket.AF_INET6: "2001:db8::1"}


def default_route_source(family: int) -> str | None:
    """The local address packets to the outside would leave from, if there is such a route."""
    with contextlib.suppress(OSError), socket.socket(family, socket.SOCK_DGRAM) as s:
        s.connect((_PROBE[family], 9))
        address = str(s.getsockname()[0])
        ip = ipaddress.ip_address(address)
        if not (ip.is_unspecified or ip.is_loopback or ip.is_link_local):
            return address
    return None


def _hostname_address(family: int, hostname: str) -> str | None:
    with contextlib.suppress(OSError):
        for *_rest, sockaddr in socket.getaddrinfo(hostname, None, family, socket.SOCK_DGRAM):
            ip = ipaddress.ip_address(str(sockaddr[0]))
            if not (ip.is_loopback or ip.is_link_local or ip.is_unspecified):
                return str(ip)
    return None


def _is_local(address: str) -> bool:
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as s:
        try:
            s.bind((address, 0))
        except OSError:
            return False
    return True


def choose_node_ip(requested: str = "", *, hostname: str | None = None) -> str:
    """The node IP to report; ``InvalidInput`` (field ``--node-ip``) for a bad request."""
    family: int = socket.AF_INET
    if requested:
        try:
            ip = ipaddress.ip_address(requested)
        except ValueError:
            raise InvalidInput(f"not an IP address: {requested!r}", field="--node-ip") from None
        if not ip.is_unspecified:
            if ip.is_multicast or ip.is_link_local:
                raise InvalidInput(f"{ip} cannot be a node address", field="--node-ip")
            if not _is_local(str(ip)):
                raise InvalidInput(
                    f"{ip} is not an address of this host (use one of its interfaces)",
                    field="--node-ip",
                )
            return str(ip)
        family = socket.AF_INET6 if ip.version == 6 else socket.AF_INET
    other = socket.AF_INET6 if family == socket.AF_INET else socket.AF_INET
    name = socket.gethostname() if hostname is None else hostname
    for fam in (family, other):
        found = default_route_source(fam) or _hostname_address(fam, name)
        if found:
            return found
    return "127.0.0.1" if family == socket.AF_INET else "::1"
