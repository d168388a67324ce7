"""rtnetlink messages, sans-IO: requests become bytes, reply bytes become values.

Only what the built-in pod network needs: links (a bridge, a veth pair whose peer is created
directly in another network namespace, master/up/MTU, delete, get by name), IPv4 addresses and
routes, and the bridge-port hairpin flag (``AF_BRIDGE`` + nested ``IFLA_PROTINFO``, as the CNI
bridge plugin sets it). Layouts are those of ``linux/netlink.h``, ``linux/rtnetlink.h``,
``linux/if_link.h`` and ``linux/if_addr.h`` in host byte order; constant names follow them.

``encode(request, seq)`` returns one message; ``decode(data)`` parses what one ``recv`` returned
into ``Ack`` / ``Done`` / ``Link`` values (anything else is skipped as ``Other``).
"""

from __future__ import annotations

import ipaddress
import socket
import struct
from collections.abc import Iterator
from dataclasses import dataclass

__all__ = [
    "Ack",
    "AddAddress",
    "AddRoute",
    "CreateBridge",
    "CreateVeth",
    "DeleteGroup",
    "DeleteLink",
    "Done",
    "GetLink",
    "Link",
    "NetlinkDecodeError",
    "Other",
    "Reply",
    "Request",
    "SetGroup",
    "SetHairpin",
    "SetLink",
    "decode",
    "encode",
]

# linux/netlink.h
NLMSG_NOOP = 1
NLMSG_ERROR = 2
NLMSG_DONE = 3
NLM_F_REQUEST = 0x1
NLM_F_MULTI = 0x2
NLM_F_ACK = 0x4
NLM_F_REPLACE = 0x100
NLM_F_EXCL = 0x200
NLM_F_CREATE = 0x400
NLM_F_CAPPED = 0x100  # in an NLMSG_ERROR: the original message was cut to its header
NLM_F_ACK_TLVS = 0x200  # in an NLMSG_ERROR: extended-ack attributes follow
NLMSGERR_ATTR_MSG = 1
NLA_F_NESTED = 0x8000
SOL_NETLINK = 270
NETLINK_CAP_ACK = 10
NETLINK_EXT_ACK = 11

# linux/rtnetlink.h
RTM_NEWLINK = 16
RTM_DELLINK = 17
RTM_GETLINK = 18
RTM_SETLINK = 19
RTM_NEWADDR = 20
RTM_NEWROUTE = 24
RT_TABLE_MAIN = 254
RTPROT_BOOT = 3
RT_SCOPE_UNIVERSE = 0
RTN_UNICAST = 1
RTA_DST = 1
RTA_OIF = 4
RTA_GATEWAY = 5
RTEXT_FILTER_SKIP_STATS = 1 << 3

# linux/if_link.h, linux/if.h, linux/veth.h
IFLA_ADDRESS = 1
IFLA_IFNAME = 3
IFLA_MTU = 4
IFLA_LINK = 5
IFLA_MASTER = 10
IFLA_PROTINFO = 12
IFLA_LINKINFO = 18
IFLA_GROUP = 27
IFLA_NET_NS_FD = 28
IFLA_EXT_MASK = 29
IFLA_INFO_KIND = 1
IFLA_INFO_DATA = 2
VETH_INFO_PEER = 1
IFLA_BRPORT_MODE = 4  # hairpin
IFF_UP = 0x1

# linux/if_addr.h
IFA_ADDRESS = 1
IFA_LOCAL = 2
IFA_BROADCAST = 4

AF_UNSPEC = 0
AF_INET = socket.AF_INET
AF_BRIDGE = 7

_NLMSGHDR = struct.Struct("=IHHII")  # len, type, flags, seq, pid
_IFINFOMSG = struct.Struct("=BxHiII")  # family, pad, type, index, flags, change
_IFADDRMSG = struct.Struct("=BBBBI")  # family, prefixlen, flags, scope, index
_RTMSG = struct.Struct("=BBBBBBBBI")  # family, dst_len, src_len, tos, table, protocol, scope,
# type, flags
_RTATTR = struct.Struct("=HH")
_U32 = struct.Struct("=I")
_I32 = struct.Struct("=i")
IFNAMSIZ = 16


class NetlinkDecodeError(ValueError):
    """Reply bytes that are not well-formed netlink (a kernel bug or a truncated read)."""


# ----- requests -----


@dataclass(frozen=True, slots=True, kw_only=True)
class CreateBridge:
    """``ip link add NAME type bridge`` (+ ``up``); EEXIST when it is there already."""

    name: str
    mac: str = ""  # a fixed address keeps the bridge from taking its lowest port's
    up: bool = True


@dataclass(frozen=True, slots=True, kw_only=True)
class CreateVeth:
    """A veth pair: ``name`` here (enslaved to ``master`` when non-zero, up when ``up``),
    ``peer`` created directly in the namespace of the open file ``peer_netns_fd``. The peer
    starts down: the kernel configures it before the pair is joined, so asking for it to be up
    here fails with ENOTCONN; bring it up with ``SetLink`` in its namespace."""

    name: str
    peer: str
    peer_netns_fd: int
    peer_mac: str = ""
    master: int = 0
    mtu: int = 0
    up: bool = True


@dataclass(frozen=True, slots=True, kw_only=True)
class SetLink:
    """Change an existing link (by index): up/down, master, MTU (0 leaves them)."""

    index: int
    up: bool | None = None
    master: int = 0
    mtu: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class DeleteLink:
    name: str


@dataclass(frozen=True, slots=True, kw_only=True)
class SetGroup:
    """Put link ``name`` in device group ``group`` (``ip link set NAME group N``)."""

    name: str
    group: int


@dataclass(frozen=True, slots=True, kw_only=True)
class DeleteGroup:
    """Delete every link of device group ``group`` at once (``ip link del group N``): the
    kernel unregisters them as one batch, with one set of RCU grace periods instead of one per
    link. ENODEV when the group is empty."""

    group: int


@dataclass(frozen=True, slots=True, kw_only=True)
class GetLink:
    name: str


@dataclass(frozen=True, slots=True, kw_only=True)
class SetHairpin:
    """The bridge-port hairpin flag of the enslaved link ``index``."""

    index: int
    on: bool = True


@dataclass(frozen=True, slots=True, kw_only=True)
class AddAddress:
    """An IPv4 address ``address/prefix_len`` on link ``index`` (with its broadcast)."""

    index: int
    address: str
    prefix_len: int


@dataclass(frozen=True, slots=True, kw_only=True)
class AddRoute:
    """An IPv4 route in the main table: ``destination`` (``0.0.0.0/0`` is the default route)
    via ``gateway``, optionally pinned to link ``index``."""

    destination: str
    gateway: str
    index: int = 0


Request = (
    CreateBridge
    | CreateVeth
    | SetLink
    | DeleteLink
    | SetGroup
    | DeleteGroup
    | GetLink
    | SetHairpin
    | AddAddress
    | AddRoute
)


def _attr(kind: int, payload: bytes) -> bytes:
    length = _RTATTR.size + len(payload)
    return _RTATTR.pack(length, kind) + payload + b"\0" * (-length % 4)


def _name(name: str, field: str = "name") -> bytes:
    raw = name.encode()
    if not raw or len(raw) >= IFNAMSIZ or b"/" in raw or b"\0" in raw or name.strip() != name:
        raise ValueError(f"{field}: {name!r} is not a valid interface name (1-15 bytes)")
    return raw + b"\0"


def _mac(text: str, field: str) -> bytes:
    try:
        raw = bytes(int(part, 16) for part in text.split(":"))
    except ValueError:
        raw = b""
    if len(raw) != 6:
        raise ValueError(f"{field}: {text!r} is not a MAC address (6 hex bytes)")
    return raw


def _u32(value: int) -> bytes:
    return _U32.pack(value)


def _ipv4(text: str, field: str) -> bytes:
    try:
        return ipaddress.IPv4Address(text).packed
    except ValueError as e:
        raise ValueError(f"{field}: {text!r} is not an IPv4 address") from e


def _ifinfo(family: int = AF_UNSPEC, index: int = 0, up: bool | None = None) -> bytes:
    flags = IFF_UP if up else 0
    change = IFF_UP if up is not None else 0
    return _IFINFOMSG.pack(family, 0, index, flags, change)


def _body(req: Request) -> tuple[int, int, bytes]:
    """(message type, extra flags, payload) of one request."""
    create = NLM_F_CREATE | NLM_F_EXCL
    match req:
        case CreateBridge():
            info = _attr(IFLA_INFO_KIND, b"bridge")
            payload = _ifinfo(up=req.up or None) + _attr(IFLA_IFNAME, _name(req.name))
            if req.mac:
                payload += _attr(IFLA_ADDRESS, _mac(req.mac, "mac"))
            return RTM_NEWLINK, create, payload + _attr(IFLA_LINKINFO | NLA_F_NESTED, info)
        case CreateVeth():
            peer = _ifinfo() + _attr(IFLA_IFNAME, _name(req.peer, "peer"))
            if req.peer_mac:
                peer += _attr(IFLA_ADDRESS, _mac(req.peer_mac, "peer_mac"))
            peer += _attr(IFLA_NET_NS_FD, _u32(req.peer_netns_fd))
            if req.mtu:
                peer += _attr(IFLA_MTU, _u32(req.mtu))
            data = _attr(VETH_INFO_PEER, peer)
            info = _attr(IFLA_INFO_KIND, b"veth") + _attr(IFLA_INFO_DATA | NLA_F_NESTED, data)
            payload = _ifinfo(up=req.up or None) + _attr(IFLA_IFNAME, _name(req.name))
            if req.mtu:
                payload += _attr(IFLA_MTU, _u32(req.mtu))
            if req.master:
                payload += _attr(IFLA_MASTER, _u32(req.master))
            return RTM_NEWLINK, create, payload + _attr(IFLA_LINKINFO | NLA_F_NESTED, info)
        case SetLink():
            payload = _ifinfo(index=req.index, up=req.up)
            if req.mtu:
                payload += _attr(IFLA_MTU, _u32(req.mtu))
            if req.master:
                payload += _attr(IFLA_MASTER, _u32(req.master))
            return RTM_NEWLINK, 0, payload
        case DeleteLink():
            return RTM_DELLINK, 0, _ifinfo() + _attr(IFLA_IFNAME, _name(req.name))
        case SetGroup():
            if not 0 <= req.group < 2**32:
                raise ValueError(f"group: {req.group} is not in 0..2^32-1")
            payload = _ifinfo() + _attr(IFLA_IFNAME, _name(req.name))
            return RTM_NEWLINK, 0, payload + _attr(IFLA_GROUP, _u32(req.group))
        case DeleteGroup():
            if not 0 < req.group < 2**32:
                raise ValueError(f"group: {req.group} is not in 1..2^32-1 (0 is the default)")
            return RTM_DELLINK, 0, _ifinfo() + _attr(IFLA_GROUP, _u32(req.group))
        case GetLink():
            payload = _ifinfo() + _attr(IFLA_IFNAME, _name(req.name))
            return RTM_GETLINK, 0, payload + _attr(IFLA_EXT_MASK, _u32(RTEXT_FILTER_SKIP_STATS))
        case SetHairpin():
            mode = _attr(IFLA_BRPORT_MODE, bytes([1 if req.on else 0]))
            payload = _ifinfo(family=AF_BRIDGE, index=req.index)
            return RTM_SETLINK, 0, payload + _attr(IFLA_PROTINFO | NLA_F_NESTED, mode)
        case AddAddress():
            local = _ipv4(req.address, "address")
            if not 0 <= req.prefix_len <= 32:
                raise ValueError(f"prefix_len: {req.prefix_len} is not in 0..32")
            net = ipaddress.IPv4Network(f"{req.address}/{req.prefix_len}", strict=False)
            payload = _IFADDRMSG.pack(AF_INET, req.prefix_len, 0, RT_SCOPE_UNIVERSE, req.index)
            payload += _attr(IFA_LOCAL, local) + _attr(IFA_ADDRESS, local)
            if req.prefix_len < 31:
                payload += _attr(IFA_BROADCAST, net.broadcast_address.packed)
            return RTM_NEWADDR, create, payload
        case AddRoute():
            try:
                dst = ipaddress.IPv4Network(req.destination)
            except ValueError as e:
                raise ValueError(f"destination: {req.destination!r}: {e}") from e
            payload = _RTMSG.pack(
                AF_INET,
                dst.prefixlen,
                0,
                0,
                RT_TABLE_MAIN,
                RTPROT_BOOT,
                RT_SCOPE_UNIVERSE,
                RTN_UNICAST,
                0,
            )
            if dst.prefixlen:
                payload += _attr(RTA_DST, dst.network_address.packed)
            payload += _attr(RTA_GATEWAY, _ipv4(req.gateway, "gateway"))
            if req.index:
                payload += _attr(RTA_OIF, _u32(req.index))
            return RTM_NEWROUTE, create, payload
    raise TypeError(f"not an rtnetlink request: {req!r}")


def encode(req: Request, seq: int, *, ack: bool = True) -> bytes:
    """One netlink message for ``req`` with sequence number ``seq`` (``NLM_F_ACK`` unless
    ``ack`` is false). Raises ``ValueError`` naming the field for a bad name or address."""
    kind, flags, payload = _body(req)
    flags |= NLM_F_REQUEST | (NLM_F_ACK if ack else 0)
    return _NLMSGHDR.pack(_NLMSGHDR.size + len(payload), kind, flags, seq, 0) + payload


# ----- replies -----


@dataclass(frozen=True, slots=True, kw_only=True)
class Ack:
    """An ``NLMSG_ERROR``: ``error`` is 0 for success, else a positive errno; ``message`` is
    the kernel's extended-ack text when it sent one."""

    seq: int
    error: int
    message: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class Done:
    seq: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Link:
    """An ``RTM_NEWLINK`` reply (to ``GetLink``, or a notification)."""

    seq: int
    index: int
    name: str
    flags: int
    mtu: int = 0
    master: int = 0
    mac: str = ""
    link: int = 0  # IFLA_LINK: for a veth, the peer's index (in the peer's namespace)
    kind: str = ""  # IFLA_INFO_KIND: "bridge", "veth", "" for a plain device


@dataclass(frozen=True, slots=True, kw_only=True)
class Other:
    seq: int
    type: int


Reply = Ack | Done | Link | Other


def _attrs(data: bytes, start: int, end: int) -> Iterator[tuple[int, bytes]]:
    pos = start
    while pos + _RTATTR.size <= end:
        length, kind = _RTATTR.unpack_from(data, pos)
        if length < _RTATTR.size or pos + length > end:
            raise NetlinkDecodeError(f"attribute at {pos} has bad length {length}")
        yield kind & ~NLA_F_NESTED & 0x3FFF, data[pos + _RTATTR.size : pos + length]
        pos += (length + 3) & ~3


def _decode_error(data: bytes, pos: int, end: int, flags: int, seq: int) -> Ack:
    if end - pos < _I32.size + _NLMSGHDR.size:
        raise NetlinkDecodeError("short NLMSG_ERROR")
    (err,) = _I32.unpack_from(data, pos)
    orig_len = _NLMSGHDR.unpack_from(data, pos + _I32.size)[0]
    message = ""
    if flags & NLM_F_ACK_TLVS:
        tlvs = pos + _I32.size + (_NLMSGHDR.size if flags & NLM_F_CAPPED else orig_len)
        for kind, value in _attrs(data, (tlvs + 3) & ~3, end):
            if kind == NLMSGERR_ATTR_MSG:
                message = value.rstrip(b"\0").decode(errors="replace")
    return Ack(seq=seq, error=-err, message=message)


def _decode_link(data: bytes, pos: int, end: int, seq: int) -> Link:
    if end - pos < _IFINFOMSG.size:
        raise NetlinkDecodeError("short RTM_NEWLINK")
    _family, _type, index, ifflags, _change = _IFINFOMSG.unpack_from(data, pos)
    name, mtu, master, mac, link, link_kind = "", 0, 0, "", 0, ""
    for kind, value in _attrs(data, pos + _IFINFOMSG.size, end):
        if kind == IFLA_IFNAME:
            name = value.split(b"\0", 1)[0].decode(errors="replace")
        elif kind == IFLA_MTU and len(value) >= 4:
            mtu = _U32.unpack_from(value)[0]
        elif kind == IFLA_MASTER and len(value) >= 4:
            master = _U32.unpack_from(value)[0]
        elif kind == IFLA_LINK and len(value) >= 4:
            link = _U32.unpack_from(value)[0]
        elif kind == IFLA_ADDRESS:
            mac = ":".join(f"{b:02x}" for b in value)
        elif kind == IFLA_LINKINFO:
            for sub, sub_value in _attrs(value, 0, len(value)):
                if sub == IFLA_INFO_KIND:
                    link_kind = sub_value.split(b"\0", 1)[0].decode(errors="replace")
    return Link(
        seq=seq,
        index=index,
        name=name,
        flags=ifflags,
        mtu=mtu,
        master=master,
        mac=mac,
        link=link,
        kind=link_kind,
    )


def decode(data: bytes) -> list[Reply]:
    """Every message in ``data`` (one datagram may hold several)."""
    out: list[Reply] = []
    pos = 0
    while pos + _NLMSGHDR.size <= len(data):
        length, kind, flags, seq, _pid = _NLMSGHDR.unpack_from(data, pos)
        if length < _NLMSGHDR.size or pos + length > len(data):
            raise NetlinkDecodeError(f"message at {pos} has bad length {length}")
        body, end = pos + _NLMSGHDR.size, pos + length
        if kind == NLMSG_ERROR:
            out.append(_decode_error(data, body, end, flags, seq))
        elif kind == NLMSG_DONE:
            out.append(Done(seq=seq))
        elif kind == RTM_NEWLINK:
            out.append(_decode_link(data, body, end, seq))
        elif kind != NLMSG_NOOP:
            out.append(Other(seq=seq, type=kind))
        pos += (length + 3) & ~3
    if pos < len(data):
        raise NetlinkDecodeError(f"{len(data) - pos} trailing bytes")
    return out
