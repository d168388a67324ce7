"""Host ports on the built-in network: only a pod with a hostPort costs a portmap exec, and
127.0.0.1:<hostPort> reaches it; teardown and the start-up sweep remove the rules (root)."""

from __future__ import annotations

import asyncio
import secrets
import subprocess
from pathlib import Path

import pytest

from pykubelet.network import SandboxNetworkRef
from pykubelet.network.localnet import GUARD_COMMENT, LocalnetGuard
from pykubelet.runtime.types import PortMapping
from tests.conftest import free_port
from tests.network.nsfix import Namespace, namespaces, private_bridge
from tests.podspec.portfix import echo_server, portmap_rules, serve, talk
from tests.prereq import require, require_binary, require_root

pytestmark = pytest.mark.root
CNI_BIN = "/usr/lib/cni"


def _need() -> None:
    require_root()
    require_binary("unshare")
    require_binary("iptables")
    require(Path(CNI_BIN, "portmap").exists(), "needs containernetworking-plugins (portmap)")


def _ref(sid: str, ns: Namespace, mappings: tuple[PortMapping, ...]) -> SandboxNetworkRef:
    return SandboxNetworkRef(
        sandbox_id=sid,
        netns_path=ns.path,
        namespace="t",
        name=sid,
        uid=sid,
        port_mappings=mappings,
    )


async def test_host_port_reaches_the_pod_and_goes_with_it(tmp_path: Path) -> None:
    _need()
    mapped, plain = secrets.token_hex(32), secrets.token_hex(32)
    port = free_port()
    mappings = (PortMapping(container_port=80, host_port=port, host_ip="127.0.0.1"),)
    with private_bridge(tmp_path) as br, namespaces(2) as (a, b):
        net = br.network()
        records = br.state_dir / "portmap"
        try:
            sa = await net.attach(_ref(mapped, a, mappings))
            await net.attach(_ref(plain, b, (PortMapping(container_port=80),)))
            # only the pod with a host port has a portmap record (and cost an exec)
            assert sorted(p.stem for p in records.glob("*.json")) == [mapped]
            rules = portmap_rules(mapped)
            assert any(f"--dports {port} " in r for r in rules), rules
            assert any(f"{sa.ips[0]}:80" in r for r in rules if "-j DNAT" in r), rules
            server = await echo_server(a.path, sa.ips[0], 80)
            with server:
                task = asyncio.create_task(serve(server))
                try:
                    assert await talk("127.0.0.1", port) == b"echo:hi"
                finally:
                    task.cancel()
            await net.teardown(mapped)
            assert portmap_rules(mapped) == []
            assert list(records.glob("*.json")) == []
            with pytest.raises(OSError):
                await talk("127.0.0.1", port, timeout_s=5)
        finally:
            await net.teardown(mapped)
            await net.teardown(plain)
            net.close()
        assert portmap_rules(mapped) == []


async def test_a_crashed_agents_rules_are_swept_at_start(tmp_path: Path) -> None:
    _need()
    sid = secrets.token_hex(32)
    mappings = (PortMapping(container_port=80, host_port=free_port(), host_ip="127.0.0.1"),)
    with private_bridge(tmp_path) as br, namespaces(1) as (a,):
        first = br.network()
        second = br.network()
        try:
            await first.attach(_ref(sid, a, mappings))
            first.close()  # the agent dies without a teardown
            assert portmap_rules(sid)
            assert await second.cleanup_leftovers(set()) == [sid]
            assert portmap_rules(sid) == []
        finally:
            await second.teardown(sid)
            second.close()
        assert portmap_rules(sid) == []


async def test_a_failed_portmap_leaves_no_address_or_interface(tmp_path: Path) -> None:
    _need()
    sid = secrets.token_hex(32)
    mappings = (PortMapping(container_port=80, host_port=free_port(), host_ip="127.0.0.1"),)
    with private_bridge(tmp_path) as br, namespaces(1) as (a,):
        net = br.network(cni_bin_dir=str(tmp_path / "no-plugins"))
        try:
            with pytest.raises(Exception, match="portmap"):
                await net.attach(_ref(sid, a, mappings))
            assert list((br.state_dir / "addresses").iterdir()) == []
            assert "eth0" not in a.run("ip", "-o", "link").stdout
        finally:
            await net.teardown(sid)
            net.close()


def _guard_rules() -> list[str]:
    out = subprocess.run(
        ["iptables", "-w", "5", "-t", "filter", "-S", "INPUT"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return [line for line in out.splitlines() if GUARD_COMMENT in line]


async def test_the_localnet_guard_is_in_place_when_a_host_port_is_mapped(tmp_path: Path) -> None:
    """portmap turns route_localnet on for the bridge; the kubelet's "block incoming localnet
    connections" rule (ours, under our comment) is there by then, once however many agents."""
    _need()
    sid = secrets.token_hex(32)
    mappings = (PortMapping(container_port=80, host_port=free_port(), host_ip="127.0.0.1"),)
    with private_bridge(tmp_path) as br, namespaces(1) as (a,):
        net = br.network()
        try:
            await net.attach(_ref(sid, a, mappings))
            route_localnet = f"/proc/sys/net/ipv4/conf/{br.name}/route_localnet"
            assert await asyncio.to_thread(_read, route_localnet) == "1"
            [rule] = _guard_rules()
            assert "! -s 127.0.0.0/8 -d 127.0.0.0/8" in rule and rule.endswith("-j DROP")
            assert "! --ctstate RELATED,ESTABLISHED,DNAT" in rule
            await LocalnetGuard().ensure()  # a second agent adds no second rule
            assert len(_guard_rules()) == 1
        finally:
            await net.teardown(sid)
            net.close()


def _read(path: str) -> str:
    return Path(path).read_text().strip()
