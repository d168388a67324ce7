"""Host ports through real CNI plugins (bridge + portmap, iptables): 127.0.0.1:<hostPort>
reaches the pod's listener, and DEL removes the forwarding rules, also after an agent crash."""

from __future__ import annotations

import asyncio
import secrets
from pathlib import Path

import pytest

from pykubelet.network import CniNetwork, CniPluginError, ConfList, PortMapper, SandboxNetworkRef
from pykubelet.runtime.types import PortMapping
from tests.conftest import free_port
from tests.podspec.netfix import netns, private_network
from tests.podspec.portfix import echo_server, portmap_rules, serve, talk
from tests.prereq import require, require_binary, require_root

CNI_BIN = "/usr/lib/cni"
pytestmark = pytest.mark.root


def _need() -> None:
    require_root()
    require(Path(CNI_BIN, "portmap").exists(), "needs containernetworking-plugins (portmap)")
    require_binary("iptables")


def _ref(sid: str, path: str, mappings: tuple[PortMapping, ...]) -> SandboxNetworkRef:
    return SandboxNetworkRef(
        sandbox_id=sid,
        netns_path=path,
        namespace="default",
        name=sid,
        uid=sid,
        port_mappings=mappings,
    )


async def test_host_port_reaches_the_pod_and_del_removes_the_rules(tmp_path: Path) -> None:
    _need()
    sid = "hp" + secrets.token_hex(16)
    host_port = free_port()
    mappings = (
        PortMapping(container_port=80, host_port=host_port, protocol="TCP", host_ip="127.0.0.1"),
        PortMapping(container_port=81),  # no host port: nothing is mapped for it
    )
    with private_network(tmp_path) as net, netns() as ns:
        cni = CniNetwork(
            state_dir=str(tmp_path / "state"), conf_dir="", bin_dir=CNI_BIN, default=net.conf
        )
        try:
            status = await cni.attach(_ref(sid, ns, mappings))
            rules = portmap_rules(sid)
            assert any(f"--dports {host_port} " in r for r in rules), rules
            dnat = [r for r in rules if "-j DNAT" in r]
            assert dnat and all(f"{status.ips[0]}:80" in r for r in dnat), rules
            server = await echo_server(ns, status.ips[0], 80)
            with server:
                task = asyncio.create_task(serve(server))
                try:
                    assert await talk("127.0.0.1", host_port) == b"echo:hi"
                    # (no CNI CHECK: Debian's portmap 1.1.1 fails it on IPv4-only pods,
                    # containernetworking/plugins#819)
                finally:
                    task.cancel()
        finally:
            await cni.teardown(sid)
        assert portmap_rules(sid) == []
        # a second connection attempt no longer reaches anything
        with pytest.raises(OSError):
            await talk("127.0.0.1", host_port, timeout_s=5)


async def test_rules_of_a_crashed_agent_are_removed_at_start(tmp_path: Path) -> None:
    _need()
    sid = "hp" + secrets.token_hex(16)
    host_port = free_port()
    mapping = PortMapping(container_port=80, host_port=host_port, host_ip="127.0.0.1")
    with private_network(tmp_path) as net, netns() as ns:
        state = str(tmp_path / "state")
        first = CniNetwork(state_dir=state, conf_dir="", bin_dir=CNI_BIN, default=net.conf)
        try:
            await first.attach(_ref(sid, ns, (mapping,)))
            assert portmap_rules(sid)
            del first  # the agent dies without a teardown
            second = CniNetwork(state_dir=state, conf_dir="", bin_dir=CNI_BIN, default=net.conf)
            assert await second.cleanup_leftovers(set()) == [sid]
            assert portmap_rules(sid) == []
        finally:
            await CniNetwork(
                state_dir=state, conf_dir="", bin_dir=CNI_BIN, default=net.conf
            ).teardown(sid)


async def test_port_mapper_for_a_network_made_outside_cni(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """``PortMapper`` (the built-in network's hook) on an interface made by something else:
    here the CNI bridge plugin alone, so the portmap exec is only the mapper's."""
    _need()
    sid = "hp" + secrets.token_hex(16)
    host_port = free_port()
    mappings = (PortMapping(container_port=80, host_port=host_port, host_ip="127.0.0.1"),)
    with private_network(tmp_path) as net, netns() as ns:
        bridge_only = ConfList(name="plain", cni_version="1.0.0", plugins=net.conf.plugins[:1])
        cni = CniNetwork(
            state_dir=str(tmp_path / "state"), conf_dir="", bin_dir=CNI_BIN, default=bridge_only
        )
        mapper = PortMapper(state_dir=str(tmp_path / "portmap"), bin_dir=CNI_BIN)
        try:
            status = await cni.attach(_ref(sid, ns, mappings))
            assert portmap_rules(sid) == []  # no portmap in that chain
            assert "has no plugin with the portMappings capability" in caplog.text
            assert not await mapper.add(
                sid,
                ns,
                (PortMapping(container_port=80),),
                ifname="eth0",
                address=status.ips[0],
                prefix_len=24,
            )
            assert mapper.recorded() == []  # no host port: no exec, no record
            assert await mapper.add(
                sid,
                ns,
                mappings,
                ifname="eth0",
                address=status.ips[0],
                prefix_len=24,
                gateway=status.gateway,
            )
            assert mapper.recorded() == [sid]
            server = await echo_server(ns, status.ips[0], 80)
            with server:
                task = asyncio.create_task(serve(server))
                try:
                    assert await talk("127.0.0.1", host_port) == b"echo:hi"
                finally:
                    task.cancel()
            # an agent crash: a new mapper releases what the record names
            again = PortMapper(state_dir=str(tmp_path / "portmap"), bin_dir=CNI_BIN)
            assert await again.cleanup_leftovers({"other"}) == [sid]
            assert portmap_rules(sid) == []
            await again.remove(sid)  # idempotent
        finally:
            await mapper.remove(sid)
            await cni.teardown(sid)
        assert portmap_rules(sid) == []


async def test_port_mapper_failure_leaves_nothing(tmp_path: Path) -> None:
    _need()
    sid = "hp" + secrets.token_hex(16)
    mapper = PortMapper(state_dir=str(tmp_path / "portmap"), bin_dir=CNI_BIN)
    mapping = PortMapping(container_port=80, host_port=free_port(), host_ip="127.0.0.1")
    with pytest.raises(CniPluginError, match="portmap"):
        # portmap refuses a prevResult whose interface is not in a sandbox
        await mapper.add(sid, "", (mapping,), ifname="eth0", address="10.0.0.2", prefix_len=24)
    assert mapper.recorded() == []
    assert portmap_rules(sid) == []
