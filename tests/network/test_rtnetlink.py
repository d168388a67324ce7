"""rtnetlink bytes, field by field (x86-64: host byte order is little-endian).

Every vector is spelled from the struct layouts of linux/netlink.h, rtnetlink.h, if_link.h and
if_addr.h; ``test_the_kernel_accepts_the_vectors`` sends the same bytes to a real kernel in a
namespace of its own, so a vector that the kernel would refuse fails here.
"""

from __future__ import annotations

import socket
import sys

import pytest

from pykubelet.network import rtnetlink as rt
from tests.network.nsfix import namespaces
from tests.prereq import require_binary, require_root


def h(*parts: str) -> bytes:
    return bytes.fromhex("".join(parts).replace(" ", ""))


ACK_FLAGS = "0500"  # NLM_F_REQUEST | NLM_F_ACK
CREATE_FLAGS = "0506"  # ... | NLM_F_EXCL | NLM_F_CREATE

VECTORS: list[tuple[str, rt.Request, int, bytes]] = [
    (
        "get link lo",
        rt.GetLink(name="lo"),
        7,
        h(
            "30000000 1200",  # len 48, RTM_GETLINK
            ACK_FLAGS,
            "07000000 00000000",  # seq 7, pid 0
            "00 00 0000 00000000 00000000 00000000",  # ifinfomsg: AF_UNSPEC, index 0
            "0700 0300 6c6f00 00",  # IFLA_IFNAME "lo\0" + pad
            "0800 1d00 08000000",  # IFLA_EXT_MASK RTEXT_FILTER_SKIP_STATS
        ),
    ),
    (
        "create bridge",
        rt.CreateBridge(name="pkt0", mac="0a:58:0a:63:01:01"),
        1,
        h(
            "48000000 1000",  # len 72, RTM_NEWLINK
            CREATE_FLAGS,
            "01000000 00000000",
            "00 00 0000 00000000 01000000 01000000",  # flags IFF_UP, change IFF_UP
            "0900 0300 706b743000 000000",  # IFLA_IFNAME "pkt0\0"
            "0a00 0100 0a580a630101 0000",  # IFLA_ADDRESS
            "1000 1280",  # IFLA_LINKINFO | NLA_F_NESTED
            "0a00 0100 627269646765 0000",  # IFLA_INFO_KIND "bridge"
        ),
    ),
    (
        "address on link 2",
        rt.AddAddress(index=2, address="10.99.1.5", prefix_len=24),
        4,
        h(
            "30000000 1400",  # len 48, RTM_NEWADDR
            CREATE_FLAGS,
            "04000000 00000000",
            "02 18 00 00 02000000",  # ifaddrmsg: AF_INET, /24, scope universe, index 2
            "0800 0200 0a630105",  # IFA_LOCAL
            "0800 0100 0a630105",  # IFA_ADDRESS
            "0800 0400 0a6301ff",  # IFA_BROADCAST
        ),
    ),
    (
        "default route via the gateway",
        rt.AddRoute(destination="0.0.0.0/0", gateway="10.99.1.1", index=2),
        5,
        h(
            "2c000000 1800",  # len 44, RTM_NEWROUTE
            CREATE_FLAGS,
            "05000000 00000000",
            # rtmsg: AF_INET, dst_len 0, src_len 0, tos 0, RT_TABLE_MAIN, RTPROT_BOOT,
            # RT_SCOPE_UNIVERSE, RTN_UNICAST, flags 0
            "02 00 00 00 fe 03 00 01 00000000",
            "0800 0500 0a630101",  # RTA_GATEWAY
            "0800 0400 02000000",  # RTA_OIF
        ),
    ),
    (
        "set link 2 up",
        rt.SetLink(index=2, up=True),
        6,
        h(
            "20000000 1000",  # len 32, RTM_NEWLINK on an existing link
            ACK_FLAGS,
            "06000000 00000000",
            "00 00 0000 02000000 01000000 01000000",
        ),
    ),
    (
        "delete link",
        rt.DeleteLink(name="pkt0"),
        8,
        h(
            "2c000000 1100",  # len 44, RTM_DELLINK
            ACK_FLAGS,
            "08000000 00000000",
            "00 00 0000 00000000 00000000 00000000",
            "0900 0300 706b743000 000000",
        ),
    ),
    (
        "put a link in device group 1234",
        rt.SetGroup(name="pkt0", group=1234),
        9,
        h(
            "34000000 1000",  # len 52, RTM_NEWLINK on an existing link, by name
            ACK_FLAGS,
            "09000000 00000000",
            "00 00 0000 00000000 00000000 00000000",
            "0900 0300 706b743000 000000",  # IFLA_IFNAME "pkt0\0"
            "0800 1b00 d2040000",  # IFLA_GROUP 1234
        ),
    ),
    (
        "delete device group 1234",
        rt.DeleteGroup(group=1234),
        10,
        h(
            "28000000 1100",  # len 40, RTM_DELLINK
            ACK_FLAGS,
            "0a000000 00000000",
            "00 00 0000 00000000 00000000 00000000",
            "0800 1b00 d2040000",  # IFLA_GROUP 1234
        ),
    ),
    (
        "hairpin on port 7",
        rt.SetHairpin(index=7),
        3,
        h(
            "2c000000 1300",  # len 44, RTM_SETLINK
            ACK_FLAGS,
            "03000000 00000000",
            "07 00 0000 07000000 00000000 00000000",  # AF_BRIDGE, index 7
            "0c00 0c80",  # IFLA_PROTINFO | NLA_F_NESTED
            "0500 0400 01 000000",  # IFLA_BRPORT_MODE 1 (hairpin)
        ),
    ),
    (
        "veth with its peer in another namespace",
        rt.CreateVeth(
            name="pkvx",
            peer="eth0",
            peer_netns_fd=9,
            peer_mac="0a:58:0a:63:01:05",
            master=3,
            mtu=1500,
        ),
        2,
        h(
            "88000000 1000",  # len 136, RTM_NEWLINK
            CREATE_FLAGS,
            "02000000 00000000",
            "00 00 0000 00000000 01000000 01000000",  # host side up
            "0900 0300 706b767800 000000",  # IFLA_IFNAME "pkvx\0"
            "0800 0400 dc050000",  # IFLA_MTU 1500
            "0800 0a00 03000000",  # IFLA_MASTER 3
            "4c00 1280",  # IFLA_LINKINFO | NLA_F_NESTED (76)
            "0800 0100 76657468",  # IFLA_INFO_KIND "veth"
            "4000 0280",  # IFLA_INFO_DATA | NLA_F_NESTED (64)
            "3c00 0100",  # VETH_INFO_PEER (60): an ifinfomsg, then the peer's attributes
            "00 00 0000 00000000 00000000 00000000",  # the peer starts down
            "0900 0300 6574683000 000000",  # IFLA_IFNAME "eth0\0"
            "0a00 0100 0a580a630105 0000",  # IFLA_ADDRESS
            "0800 1c00 09000000",  # IFLA_NET_NS_FD 9
            "0800 0400 dc050000",  # IFLA_MTU 1500
        ),
    ),
]


@pytest.mark.parametrize(("name", "request_", "seq", "wire"), VECTORS, ids=[v[0] for v in VECTORS])
def test_requests_encode_byte_for_byte(
    name: str, request_: rt.Request, seq: int, wire: bytes
) -> None:
    assert sys.byteorder == "little"
    assert rt.encode(request_, seq) == wire


@pytest.mark.parametrize(
    ("request_", "field"),
    [
        (rt.GetLink(name=""), "name"),
        (rt.GetLink(name="sixteen-chars-xx"), "name"),
        (rt.DeleteLink(name="a/b"), "name"),
        (rt.CreateVeth(name="v", peer="x" * 16, peer_netns_fd=3), "peer"),
        (rt.CreateVeth(name="v", peer="p", peer_netns_fd=3, peer_mac="0a:58"), "peer_mac"),
        (rt.AddAddress(index=1, address="10.0.0.300", prefix_len=24), "address"),
        (rt.AddAddress(index=1, address="10.0.0.3", prefix_len=33), "prefix_len"),
        (rt.AddRoute(destination="0.0.0.0/0", gateway="fe80::1"), "gateway"),
        (rt.AddRoute(destination="10.0.0.1/8", gateway="10.0.0.1"), "destination"),
        (rt.DeleteGroup(group=0), "group"),
        (rt.SetGroup(name="x", group=2**32), "group"),
    ],
)
def test_bad_fields_are_named(request_: rt.Request, field: str) -> None:
    with pytest.raises(ValueError, match=f"^{field}: "):
        rt.encode(request_, 1)


def test_decode_ack_and_error_with_the_kernel_message() -> None:
    orig = "2c000000 1000 0506 09000000 00000000"  # the failed request's header (capped)
    ok = h("24000000 0200 0001 07000000 11220000", "00000000", orig)
    failed = h(
        "38000000 0200 0003 09000000 11220000",  # NLM_F_CAPPED | NLM_F_ACK_TLVS
        "efffffff",  # -EEXIST
        orig,
        "1200 0100 4c696e6b20616c72656164790000 0000",  # NLMSGERR_ATTR_MSG "Link already\0"
    )
    assert rt.decode(ok + failed) == [
        rt.Ack(seq=7, error=0),
        rt.Ack(seq=9, error=17, message="Link already"),
    ]


def test_decode_a_link_reply_and_done() -> None:
    link = h(
        "68000000 1000 0000 04000000 11220000",  # RTM_NEWLINK, len 104
        "00 00 0100 05000000 43100100 00000000",  # ARPHRD_ETHER, index 5, UP|...|LOWER_UP
        "0900 0300 6574683000 000000",  # IFLA_IFNAME "eth0\0"
        "0800 0400 dc050000",  # IFLA_MTU 1500
        "0800 0a00 03000000",  # IFLA_MASTER 3
        "0a00 0100 0a580a630105 0000",  # IFLA_ADDRESS
        "0800 0500 09000000",  # IFLA_LINK 9
        "0800 3200 01020304",  # an attribute this codec does not know: skipped
        "1000 1200 0900 0100 7665746800 000000",  # IFLA_LINKINFO { IFLA_INFO_KIND "veth\0" }
    )
    done = h("14000000 0300 0200 04000000 11220000", "00000000")
    assert rt.decode(link + done) == [
        rt.Link(
            seq=4,
            index=5,
            name="eth0",
            flags=0x11043,
            mtu=1500,
            master=3,
            mac="0a:58:0a:63:01:05",
            link=9,
            kind="veth",
        ),
        rt.Done(seq=4),
    ]


@pytest.mark.parametrize(
    "data",
    [
        h("40000000 0200 0000 01000000 00000000", "00000000"),  # length beyond the data
        h("08000000 0200 0000 01000000 00000000"),  # length shorter than a header
        h("14000000 1000 0000 01000000 00000000", "00000000"),  # link reply shorter than ifinfo
        h("24000000 1000 0000 01000000 00000000", "00" * 16, "ff00 0300"),  # attribute overrun
        h("14000000 0300 0000 01000000 00000000", "00000000", "0102"),  # trailing bytes
    ],
)
def test_malformed_replies_raise(data: bytes) -> None:
    with pytest.raises(rt.NetlinkDecodeError):
        rt.decode(data)


def _kernel_answers(netns_path: str, wires: list[bytes]) -> list[rt.Reply]:
    from pykubelet.host.netns import run_in_netns

    def talk() -> list[rt.Reply]:
        with socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE) as s:
            s.settimeout(5)
            s.bind((0, 0))
            replies: list[rt.Reply] = []
            for wire in wires:
                s.send(wire)
                while True:
                    got = rt.decode(s.recv(65536))
                    replies.extend(got)
                    if any(isinstance(r, rt.Ack) for r in got):
                        break
            return replies

    return run_in_netns(netns_path, talk)


@pytest.mark.root
def test_the_kernel_accepts_the_vectors() -> None:
    require_root()
    require_binary("unshare")
    require_binary("nsenter")
    wire = {name: w for name, _r, _s, w in VECTORS}
    with namespaces(1) as (ns,):
        # a fresh namespace holds only lo (index 1): the bridge becomes index 2
        replies = _kernel_answers(
            ns.path,
            [
                wire["get link lo"],
                wire["create bridge"],
                wire["set link 2 up"],
                wire["address on link 2"],
                wire["default route via the gateway"],
            ],
        )
        acks = [r for r in replies if isinstance(r, rt.Ack)]
        assert [a.error for a in acks] == [0, 0, 0, 0, 0], acks
        (lo,) = [r for r in replies if isinstance(r, rt.Link)]
        assert (lo.index, lo.name, lo.seq) == (1, "lo", 7)
        shown = ns.run("ip", "-d", "-4", "addr", "show", "pkt0").stdout
        assert "inet 10.99.1.5/24 brd 10.99.1.255" in shown
        assert "link/ether 0a:58:0a:63:01:01" in shown and "bridge" in shown
        assert "default via 10.99.1.1 dev pkt0" in ns.run("ip", "route").stdout
        # the same bridge again: the kernel says EEXIST, which the codec reports as 17
        (again,) = _kernel_answers(ns.path, [wire["create bridge"]])
        assert isinstance(again, rt.Ack), again
        assert again == rt.Ack(seq=1, error=17, message=again.message)
        grouped = _kernel_answers(
            ns.path, [wire["put a link in device group 1234"], wire["delete device group 1234"]]
        )
        assert grouped == [rt.Ack(seq=9, error=0), rt.Ack(seq=10, error=0)]
        assert "pkt0" not in ns.run("ip", "link").stdout
        _kernel_answers(ns.path, [wire["create bridge"]])
        (gone,) = _kernel_answers(ns.path, [wire["delete link"]])
        assert gone == rt.Ack(seq=8, error=0)
        assert "pkt0" not in ns.run("ip", "link").stdout
        (empty,) = _kernel_answers(ns.path, [wire["delete device group 1234"]])
        assert isinstance(empty, rt.Ack), empty
        assert empty.error == 19  # ENODEV: nothing in the group
