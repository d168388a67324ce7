"""The built-in network with real namespaces, a real bridge and real packets (root only)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from pykubelet.core.errors import InvalidInput
from pykubelet.network import (
    AddressPoolExhausted,
    BridgeNetwork,
    NetworkError,
    SandboxNetworkRef,
    host_veth_name,
)
from tests.network.nsfix import Namespace, ip, link_exists, namespaces, ping, private_bridge
from tests.prereq import require, require_binary, require_root

pytestmark = pytest.mark.root


def _need() -> None:
    require_root()
    require_binary("nsenter")
    require_binary("unshare")
    require(Path("/bin/busybox").exists(), "needs Debian's busybox-static (/bin/busybox)")


def _ref(sid: str, ns: Namespace | str) -> SandboxNetworkRef:
    path = ns if isinstance(ns, str) else ns.path
    return SandboxNetworkRef(sandbox_id=sid, netns_path=path, namespace="t", name=sid, uid=sid)


def _addr_of(ns: Namespace) -> str:
    out = ns.run("ip", "-4", "-o", "addr", "show", "dev", "eth0").stdout.split()
    return out[out.index("inet") + 1] if "inet" in out else ""


def _records(state: Path) -> dict[str, str]:
    d = state / "addresses"
    return {p.name: p.read_text().strip() for p in d.iterdir()} if d.is_dir() else {}


async def test_two_pods_get_addresses_and_reach_each_other(tmp_path: Path) -> None:
    _need()
    with private_bridge(tmp_path) as br, namespaces(2) as (a, b):
        net = br.network()
        sa = await net.attach(_ref("sandbox-a", a))
        sb = await net.attach(_ref("sandbox-b", b))
        gw = br.prefix + "1"
        assert sa.ips == (br.prefix + "2",)  # the lowest free address: network and gateway skipped
        assert sb.ips == (br.prefix + "3",)
        assert (sa.interface, sa.gateway) == ("eth0", gw)
        # inside: eth0 with the /24, up, default route via the gateway
        assert _addr_of(a) == f"{sa.ips[0]}/24"
        assert "UP" in a.run("ip", "-o", "link", "show", "eth0").stdout.split(">")[0]
        assert f"default via {gw} dev eth0" in a.run("ip", "route").stdout
        # outside: the host veth is on the bridge, up, hairpin on
        veth = host_veth_name("sandbox-a")
        detail = ip("-d", "link", "show", veth)
        assert f"master {br.name}" in detail and "state UP" in detail
        assert "hairpin on" in detail
        assert f"inet {gw}/24" in ip("-4", "addr", "show", br.name)
        # packets: pod to pod both ways, pod to the node's gateway address
        assert ping(a, sb.ips[0])
        assert ping(b, sa.ips[0])
        assert ping(a, gw)
        assert _records(br.state_dir) == {sa.ips[0]: "sandbox-a", sb.ips[0]: "sandbox-b"}

        # teardown removes the veth (and eth0 with it), releases the address; idempotent
        await net.teardown("sandbox-a", a.path)
        assert not link_exists(veth)
        assert "eth0" not in a.run("ip", "-o", "link").stdout
        assert _records(br.state_dir) == {sb.ips[0]: "sandbox-b"}
        await net.teardown("sandbox-a", a.path)
        # the next setup reuses the released address
        again = await net.attach(_ref("sandbox-c", a))
        assert again.ips == sa.ips
        assert ping(b, again.ips[0])
        await net.teardown("sandbox-c")
        await net.teardown("sandbox-b")
        assert _records(br.state_dir) == {}
        net.close()


async def test_restart_keeps_held_addresses_and_sweeps_dead_sandboxes(tmp_path: Path) -> None:
    _need()
    with private_bridge(tmp_path) as br, namespaces(3) as (a, b, c):
        first = br.network()
        gone = await first.attach(_ref("gone", a))
        kept = await first.attach(_ref("kept", b))
        # the agent is killed: no teardown; a new one starts on the same state dir
        del first
        second = br.network()
        fresh = await second.attach(_ref("fresh", c))
        assert fresh.ips[0] not in (gone.ips[0], kept.ips[0])
        a.kill()  # the dead sandbox's namespace goes away with its holder
        released = await second.cleanup_leftovers({"kept", "fresh"})
        assert released == ["gone"]
        assert not link_exists(host_veth_name("gone"))
        assert link_exists(host_veth_name("kept"))
        assert _records(br.state_dir) == {kept.ips[0]: "kept", fresh.ips[0]: "fresh"}
        assert ping(b, fresh.ips[0])
        # the freed address is handed out again
        with namespaces(1) as (d,):
            reused = await second.attach(_ref("later", d))
            assert reused.ips == gone.ips
            await second.teardown("later")
        # a veth left behind by a live pod is not touched by the sweep
        assert await second.cleanup_leftovers({"kept", "fresh"}) == []
        for sid in ("kept", "fresh"):
            await second.teardown(sid)
        second.close()


async def test_sweep_removes_a_veth_whose_namespace_lives_on(tmp_path: Path) -> None:
    _need()
    with private_bridge(tmp_path) as br, namespaces(1) as (a,):
        net = br.network()
        await net.attach(_ref("orphan", a))
        assert await net.cleanup_leftovers(set()) == ["orphan"]
        assert not link_exists(host_veth_name("orphan"))
        assert "eth0" not in a.run("ip", "-o", "link").stdout
        assert _records(br.state_dir) == {}
        net.close()


async def test_a_full_subnet_is_a_clear_error_and_leaves_nothing(tmp_path: Path) -> None:
    _need()
    # a /30 has two hosts: the gateway and one pod
    with private_bridge(tmp_path, prefix_len=30) as br, namespaces(2) as (a, b):
        net = br.network()
        only = await net.attach(_ref("only", a))
        with pytest.raises(AddressPoolExhausted, match=r"no free address in 10\.99\.\d+\.0/30"):
            await net.attach(_ref("one-too-many", b))
        assert not link_exists(host_veth_name("one-too-many"))
        assert "eth0" not in b.run("ip", "-o", "link").stdout
        assert _records(br.state_dir) == {only.ips[0]: "only"}
        await net.teardown("only")
        net.close()


async def test_setup_for_a_vanished_namespace_fails_cleanly(tmp_path: Path) -> None:
    _need()
    with private_bridge(tmp_path) as br, namespaces(1) as (a,):
        path = a.path
        a.kill()
        net = br.network()
        with pytest.raises(NetworkError, match="does not exist"):
            await net.attach(_ref("late", path))
        assert not link_exists(host_veth_name("late"))
        assert _records(br.state_dir) == {}
        await net.teardown("late", path)  # tolerated: nothing to release
        net.close()


async def test_teardown_after_the_namespace_is_gone(tmp_path: Path) -> None:
    _need()
    with private_bridge(tmp_path) as br, namespaces(1) as (a,):
        net = br.network()
        st = await net.attach(_ref("s", a))
        a.kill()
        await net.teardown("s", "")
        assert not link_exists(host_veth_name("s"))
        assert _records(br.state_dir) == {}
        assert st.ips
        net.close()


async def test_concurrent_setups_share_one_bridge(tmp_path: Path) -> None:
    _need()
    with private_bridge(tmp_path) as br, namespaces(12) as nss:
        net = br.network()
        results = await asyncio.gather(*(net.attach(_ref(f"p{i}", ns)) for i, ns in enumerate(nss)))
        ips = [r.ips[0] for r in results]
        assert len(set(ips)) == len(ips)
        assert all(ip.startswith(br.prefix) for ip in ips)
        assert ping(nss[0], ips[-1])
        await asyncio.gather(*(net.teardown(f"p{i}") for i in range(len(nss))))
        assert _records(br.state_dir) == {}
        # the veths were deleted in batches (device groups): none is left, none of another
        assert [n for n in range(len(nss)) if link_exists(host_veth_name(f"p{n}"))] == []
        assert all("eth0" not in ns.run("ip", "-o", "link").stdout for ns in nss)
        net.close()


async def test_a_name_taken_by_another_kind_of_link_is_refused(tmp_path: Path) -> None:
    _need()
    with private_bridge(tmp_path) as br, namespaces(1) as (a,):
        peer = br.name + "p"  # deleted with the pair by private_bridge
        ip("link", "add", br.name, "type", "veth", "peer", peer, check=True)
        net = br.network()
        with pytest.raises(NetworkError, match=rf"{br.name} exists and is not a bridge \(veth\)"):
            await net.attach(_ref("x", a))
        assert _records(br.state_dir) == {}
        net.close()


async def test_a_deleted_bridge_is_made_again(tmp_path: Path) -> None:
    _need()
    with private_bridge(tmp_path) as br, namespaces(2) as (a, b):
        net = br.network()
        await net.attach(_ref("before", a))
        await net.teardown("before")
        ip("link", "del", br.name, check=True)
        st = await net.attach(_ref("after", b))
        assert ping(b, st.gateway)
        await net.teardown("after")
        net.close()


def test_bad_arguments_name_the_parameter(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="subnet"):
        BridgeNetwork(state_dir=str(tmp_path), subnet="10.99.0.0/31")
    with pytest.raises(InvalidInput, match="subnet"):
        BridgeNetwork(state_dir=str(tmp_path), subnet="not-a-subnet")
    with pytest.raises(InvalidInput, match="bridge"):
        BridgeNetwork(state_dir=str(tmp_path), bridge="a-name-far-too-long")
    with pytest.raises(InvalidInput, match="sandbox_id"):
        asyncio.run(BridgeNetwork(state_dir=str(tmp_path)).teardown(""))
