"""CNI with the real plugins: two namespaces get addresses, talk to each other and to the node,
and everything is released on teardown and after a simulated agent crash."""

from __future__ import annotations

import asyncio
import json
import socket
from pathlib import Path

import pytest

from pykubelet.host.netns import open_connection, socket_in_netns
from pykubelet.network import (
    CniConfigError,
    CniNetwork,
    CniPluginError,
    ConfList,
    SandboxNetworkRef,
    load_conf_dir,
)
from tests.podspec.netfix import link_exists, netns, private_network
from tests.prereq import require, require_root

CNI_BIN = "/usr/lib/cni"


def _ref(sid: str, path: str) -> SandboxNetworkRef:
    return SandboxNetworkRef(
        sandbox_id=sid, netns_path=path, namespace="default", name=sid, uid=sid
    )


def _need_cni() -> None:
    require_root()
    require(Path(CNI_BIN, "bridge").exists(), "needs containernetworking-plugins in /usr/lib/cni")


async def _echo_server_in(netns_path: str, host: str) -> tuple[socket.socket, int]:
    sock = socket_in_netns(netns_path, socket.AF_INET)
    sock.bind((host, 0))
    sock.listen()
    return sock, int(sock.getsockname()[1])


async def _serve_once(sock: socket.socket) -> None:
    loop = asyncio.get_running_loop()
    conn, _ = await loop.sock_accept(sock)
    with conn:
        data = await loop.sock_recv(conn, 100)
        await loop.sock_sendall(conn, b"echo:" + data)


async def _talk(netns_path: str, host: str, port: int) -> bytes:
    async with asyncio.timeout(10):
        reader, writer = await open_connection(netns_path, host, port)
        writer.write(b"hi")
        await writer.drain()
        data = await reader.read(100)
        writer.close()
        return data


@pytest.mark.root
async def test_two_pods_reach_each_other_and_the_node(tmp_path: Path) -> None:
    _need_cni()
    with private_network(tmp_path) as net, netns() as ns_a, netns() as ns_b:
        cni = CniNetwork(
            state_dir=str(tmp_path / "state"), conf_dir="", bin_dir=CNI_BIN, default=net.conf
        )
        a = await cni.attach(_ref("sandbox-a", ns_a))
        b = await cni.attach(_ref("sandbox-b", ns_b))
        try:
            assert a.ips[0].startswith(net.subnet_prefix)
            assert b.ips[0].startswith(net.subnet_prefix)
            assert a.ips != b.ips
            assert a.gateway == net.subnet_prefix + "1"

            # pod B listens on its CNI address; pod A connects from its own namespace.
            server, port = await _echo_server_in(ns_b, b.ips[0])
            with server:
                served = asyncio.create_task(_serve_once(server))
                assert await _talk(ns_a, b.ips[0], port) == b"echo:hi"
                await served

            # the node (the bridge's gateway address, in the host namespace) reaches pod A
            # and pod A reaches the node.
            node_srv, node_port = await _echo_server_in("", a.gateway)
            with node_srv:
                served = asyncio.create_task(_serve_once(node_srv))
                assert await _talk(ns_a, a.gateway, node_port) == b"echo:hi"
                await served
            # loopback is up inside the pod (the loopback plugin ran)
            lo_srv, lo_port = await _echo_server_in(ns_a, "127.0.0.1")
            with lo_srv:
                served = asyncio.create_task(_serve_once(lo_srv))
                assert await _talk(ns_a, "127.0.0.1", lo_port) == b"echo:hi"
                await served
            await cni.check("sandbox-a")
        finally:
            await cni.teardown("sandbox-a")
            await cni.teardown("sandbox-b")
        ip_dir = net.data_dir / "pykubelet"
        assert not (ip_dir / a.ips[0]).exists()
        assert not (ip_dir / b.ips[0]).exists()
        assert not link_exists(ns_a, "eth0")
        await cni.teardown("sandbox-a")  # idempotent


@pytest.mark.root
async def test_leftovers_released_after_a_crash(tmp_path: Path) -> None:
    _need_cni()
    with private_network(tmp_path) as net, netns() as ns_a, netns() as ns_b:
        state = str(tmp_path / "state")
        first = CniNetwork(state_dir=state, conf_dir="", bin_dir=CNI_BIN, default=net.conf)
        gone = await first.attach(_ref("gone", ns_a))
        kept = await first.attach(_ref("kept", ns_b))
        # The agent "crashes": the object is dropped without teardown. A new one starts and
        # learns that only "kept" still has a sandbox.
        del first
        second = CniNetwork(state_dir=state, conf_dir="", bin_dir=CNI_BIN, default=net.conf)
        released = await second.cleanup_leftovers({"kept"})
        assert released == ["gone"]
        ip_dir = net.data_dir / "pykubelet"
        assert not (ip_dir / gone.ips[0]).exists()
        assert (ip_dir / kept.ips[0]).exists()
        assert not link_exists(ns_a, "eth0")
        assert link_exists(ns_b, "eth0")
        await second.teardown("kept")
        assert not (ip_dir / kept.ips[0]).exists()


@pytest.mark.root
async def test_failed_add_is_undone_and_reported(tmp_path: Path) -> None:
    _need_cni()
    with private_network(tmp_path) as net:
        cni = CniNetwork(
            state_dir=str(tmp_path / "state"), conf_dir="", bin_dir=CNI_BIN, default=net.conf
        )
        with pytest.raises(CniPluginError) as info:
            await cni.attach(_ref("nons", str(tmp_path / "no-such-netns")))
        assert "loopback" in str(info.value) or "bridge" in str(info.value)
        assert list((tmp_path / "state" / "attachments").glob("*.json")) == []


async def test_missing_plugin_is_named(tmp_path: Path) -> None:
    conf = ConfList(name="x", cni_version="1.0.0", plugins=({"type": "no-such-plugin"},))
    cni = CniNetwork(state_dir=str(tmp_path), conf_dir="", bin_dir=str(tmp_path), default=conf)
    with pytest.raises(CniPluginError, match="failed to find plugin 'loopback'"):
        await cni.attach(_ref("s1", "/proc/self/ns/net"))


def test_conf_dir_first_file_wins_and_bad_files_are_named(tmp_path: Path) -> None:
    assert load_conf_dir(str(tmp_path / "absent")) is None
    (tmp_path / "20-b.conflist").write_text(
        json.dumps({"cniVersion": "1.0.0", "name": "b", "plugins": [{"type": "bridge"}]})
    )
    (tmp_path / "10-a.conf").write_text(
        json.dumps({"cniVersion": "0.4.0", "name": "a", "type": "ptp"})
    )
    conf = load_conf_dir(str(tmp_path))
    assert conf is not None and conf.name == "a" and conf.plugins[0]["type"] == "ptp"
    (tmp_path / "05-bad.json").write_text("{not json")
    with pytest.raises(CniConfigError, match=r"05-bad\.json"):
        load_conf_dir(str(tmp_path))
    with pytest.raises(CniConfigError, match="plugins"):
        ConfList.from_json({"cniVersion": "1.0.0", "name": "x", "plugins": []})
