"""The streaming endpoints over the real ProcessRuntime: namespaces, PTYs, attach, pod ports.

Needs root (namespaces, cgroups) and Debian's busybox-static, like the runtime's own tests.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import re
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest

from pykubelet.runtime import ContainerConfig, ContainerState
from pykubelet.runtime.process import ProcessRuntime
from pykubelet.server.streams import StreamBackend
from tests.prereq import require_root
from tests.streaming.conftest import StreamServer, serve_backend
from tests.streaming.local_runtime import StaticPods, make_pod
from tests.streaming.node_client import run_spdy_client

pytest.importorskip("tests.runtime.conftest", reason="the process runtime is not on this branch")
from tests.runtime.conftest import (
    BUSYBOX_REF,
    busybox_tar,
    make_runtime,
    sandbox_config,
    wait_state,
)

__all__ = ["busybox_tar", "make_runtime"]  # fixtures used by name below
pytestmark = pytest.mark.root

ECHO_PORT = 8080


@dataclass
class PodServer:
    srv: StreamServer
    pod_name: str


@pytest.fixture
async def pod_server(
    request: pytest.FixtureRequest,
    make_runtime: Callable[..., ProcessRuntime],
    busybox_tar: Path,
    tls_files: tuple[str, str],
    tmp_path: Path,
) -> AsyncIterator[PodServer]:
    require_root()
    rt = make_runtime(helper=getattr(request, "param", "auto"))  # "python": the fallback helper
    await rt.import_image(busybox_tar)
    sc = sandbox_config(name="streampod", log_directory=str(tmp_path / "logs"))
    sid = await rt.run_pod_sandbox(sc)
    main = ContainerConfig(
        name="main",
        image=BUSYBOX_REF,
        command=("nc", "-ll", "-p", str(ECHO_PORT), "-e", "cat"),
        log_path="main/0.log",
    )
    term = ContainerConfig(
        name="term", image=BUSYBOX_REF, command=("sh",), log_path="term/0.log", stdin=True, tty=True
    )
    ids = {}
    for cfg in (main, term):
        cid = await rt.create_container(sid, cfg, sc)
        await rt.start_container(cid)
        await wait_state(rt, cid, ContainerState.RUNNING)
        ids[cfg.name] = cid
    pod = make_pod(
        name="streampod",
        uid=sc.uid,
        containers=(
            ("main", f"pykubelet://{ids['main']}", False),
            ("term", f"pykubelet://{ids['term']}", True),
        ),
    )
    backend = StreamBackend(pods=StaticPods([pod]), runtime=rt, streaming=rt)
    runner, port = await serve_backend(backend, tls_files)
    try:
        yield PodServer(StreamServer("127.0.0.1", port, None, tls_files[0], True), "streampod")  # type: ignore[arg-type]
    finally:
        await runner.cleanup()


async def _ws(srv: StreamServer, path: str, send: list[bytes]) -> list[bytes]:
    got: list[bytes] = []
    async with aiohttp.ClientSession() as s:
        async with s.ws_connect(
            srv.base_url + path, protocols=("v5.channel.k8s.io",), ssl=srv.ws_ssl()
        ) as ws:
            for m in send:
                await ws.send_bytes(m)
            async with asyncio.timeout(20):
                async for msg in ws:
                    got.append(msg.data)
    return got


def _channel(got: list[bytes], ch: int) -> bytes:
    return b"".join(m[1:] for m in got if m[:1] == bytes([ch]))


async def test_exec_runs_inside_the_pod(pod_server: PodServer) -> None:
    srv = pod_server.srv
    got = await _ws(srv, "/exec/default/streampod/main?command=hostname&output=1&error=1", [])
    assert _channel(got, 1) == b"streampod\n"
    assert json.loads(_channel(got, 3)) == {"metadata": {}, "status": "Success"}
    got = await _ws(
        srv, "/exec/default/streampod/main?command=sh&command=-c&command=exit+3&output=1", []
    )
    assert json.loads(_channel(got, 3))["details"]["causes"][0]["message"] == "3"


async def test_exec_tty_and_resize_inside_the_pod(pod_server: PodServer) -> None:
    got = await _ws(
        pod_server.srv,
        "/exec/default/streampod/main?command=sh&input=1&output=1&tty=1",
        [b'\x04{"Width":77,"Height":22}', b"\x00stty size; exit\n"],
    )
    assert b"22 77" in _channel(got, 1)


class _Terminal:
    """An interactive ``tty=1`` exec over WebSocket: type, then wait for what the screen shows."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.screen = b""

    async def type(self, text: bytes) -> None:
        await self.ws.send_bytes(b"\x00" + text)

    async def resize(self, width: int, height: int) -> None:
        await self.ws.send_bytes(b"\x04" + json.dumps({"Width": width, "Height": height}).encode())

    async def expect(self, pattern: bytes) -> re.Match[bytes]:
        async with asyncio.timeout(20):
            while (m := re.search(pattern, self.screen)) is None:
                msg = await self.ws.receive_bytes()
                if msg[:1] == b"\x01":
                    self.screen += msg[1:]
        self.screen = self.screen[m.end() :]
        return m


@pytest.mark.parametrize("pod_server", ["native", "python"], indirect=True)
async def test_exec_tty_is_the_containers_own_terminal(pod_server: PodServer) -> None:
    """Regression: the terminal came from the host's devpts, so inside the container fd 0 had
    no name (``tty``: "not a tty") and shells ran without job control."""
    srv = pod_server.srv
    async with aiohttp.ClientSession() as s:
        async with s.ws_connect(
            srv.base_url
            + "/exec/default/streampod/main?command=sh&command=-i&input=1&output=1&tty=1",
            protocols=("v5.channel.k8s.io",),
            ssl=srv.ws_ssl(),
        ) as ws:
            term = _Terminal(ws)
            await term.resize(80, 24)
            await term.type(b"tty; stty size; echo step-$((1+1))\n")
            m = await term.expect(rb"\r\n(\S+)\r\n(\d+ \d+)\r\nstep-2")
            assert re.fullmatch(rb"/dev/pts/\d+", m[1]), m[0]
            assert m[2] == b"24 80"
            await term.type(b"ls -l $(tty)\n")  # the name resolves inside the container
            await term.expect(rb"crw--w---- +1 root +\S+ +\d+, +\d+ .*/dev/pts/\d+\r\n")
            await term.resize(132, 43)
            await term.type(b"stty size; echo step-$((2+1))\n")
            assert (await term.expect(rb"(\d+ \d+)\r\nstep-3"))[1] == b"43 132"
            # job control: a background job, then ^C reaches only the foreground job
            await term.type(b"sleep 300 &\n")
            await term.type(b"jobs; echo step-$((3+1))\n")
            await term.expect(rb"\[1\]\+ +Running +sleep 300\r\nstep-4")
            await term.type(b"sh -c 'echo fg-$((2*3)); exec sleep 301'\n")
            await term.expect(rb"fg-6\r\n")  # the foreground job runs: now interrupt it
            await term.type(b"\x03")
            await term.type(b"echo rc=$?; jobs; echo step-$((4+1))\n")
            await term.expect(rb"rc=130\r\n\[1\]\+ +Running +sleep 300\r\nstep-5")
            await term.type(b"kill %1; exit 0\n")
            async with asyncio.timeout(20):
                async for msg in ws:
                    if msg.data[:1] == b"\x03":
                        assert json.loads(msg.data[1:])["status"] == "Success"
    assert b"job control turned off" not in term.screen


async def test_attach_to_a_tty_container_has_the_containers_own_terminal(
    pod_server: PodServer,
) -> None:
    """The container's own terminal (``tty: true``) comes from its devpts too: ``tty`` names
    it inside the container and a resize reaches it."""
    srv = pod_server.srv
    async with aiohttp.ClientSession() as s:
        async with s.ws_connect(
            srv.base_url + "/attach/default/streampod/term?input=1&output=1&tty=1",
            protocols=("v5.channel.k8s.io",),
            ssl=srv.ws_ssl(),
        ) as ws:
            term = _Terminal(ws)
            await term.resize(90, 33)
            await term.type(b"tty; stty size; echo step-$((5*5))\n")
            m = await term.expect(rb"\r\n(\S+)\r\n(\d+ \d+)\r\nstep-25")
            assert re.fullmatch(rb"/dev/pts/\d+", m[1]), m[0]
            assert m[2] == b"33 90"


async def test_spdy_exec_with_stdin_inside_the_pod(pod_server: PodServer) -> None:
    srv = pod_server.srv
    result = await run_spdy_client(
        {
            "port": srv.port,
            "ca": srv.ca_file,
            "path": "/exec/default/streampod/main?command=cat&input=1&output=1&error=1",
            "versions": ["v4.channel.k8s.io"],
            "streams": [
                {"name": "error", "headers": {"streamtype": "error"}},
                {
                    "name": "stdin",
                    "headers": {"streamtype": "stdin"},
                    "write": "via spdy\n",
                    "end": True,
                },
                {"name": "stdout", "headers": {"streamtype": "stdout"}},
                {"name": "stderr", "headers": {"streamtype": "stderr"}},
            ],
        }
    )
    assert result["streams"]["stdout"] == "via spdy\n"
    assert result["streams"]["error"] == '{"metadata":{},"status":"Success"}'


async def test_attach_reaches_the_containers_own_terminal(pod_server: PodServer) -> None:
    srv = pod_server.srv
    async with aiohttp.ClientSession() as s:
        async with s.ws_connect(
            srv.base_url + "/attach/default/streampod/term?input=1&output=1&tty=1",
            protocols=("v4.channel.k8s.io",),
            ssl=srv.ws_ssl(),
        ) as ws:
            await ws.send_bytes(b"\x00echo attached-$((40+2))\n")
            seen = b""
            async with asyncio.timeout(20):
                while b"attached-42" not in seen:
                    seen += (await ws.receive_bytes())[1:]


async def test_port_forward_into_the_pod_network_on_both_transports(pod_server: PodServer) -> None:
    srv = pod_server.srv
    async with aiohttp.ClientSession() as s:
        async with s.ws_connect(
            f"{srv.base_url}/portForward/default/streampod?port={ECHO_PORT}",
            protocols=("v4.channel.k8s.io",),
            ssl=srv.ws_ssl(),
        ) as ws:
            for _ in range(2):
                await ws.receive_bytes()  # the port prefixes
            await ws.send_bytes(b"\x00over websocket")
            seen = b""
            async with asyncio.timeout(20):
                while seen != b"over websocket":
                    msg = await ws.receive_bytes()
                    assert msg[0] == 0, msg
                    seen += msg[1:]
    common = {"port": str(ECHO_PORT), "requestid": "0"}
    result = await run_spdy_client(
        {
            "port": srv.port,
            "ca": srv.ca_file,
            "path": "/portForward/default/streampod",
            "versions": ["portforward.k8s.io"],
            "streams": [
                {"name": "error", "headers": {**common, "streamtype": "error"}, "end": True},
                {
                    "name": "data",
                    "headers": {**common, "streamtype": "data"},
                    "write": "over spdy",
                    "end": True,
                },
            ],
            "closeAfterEnds": True,
        }
    )
    assert result["streams"]["data"] == "over spdy"


async def test_port_forward_for_a_host_network_pod(
    make_runtime: Callable[..., ProcessRuntime],
    busybox_tar: Path,
    tls_files: tuple[str, str],
    tmp_path: Path,
) -> None:
    """A hostNetwork pod's ports are the node's: forward to a server on the host's loopback."""
    from pykubelet.runtime import NamespaceMode

    require_root()
    rt = make_runtime()
    await rt.import_image(busybox_tar)
    sc = dataclasses.replace(
        sandbox_config(
            name="hostpod", network=NamespaceMode.NODE, log_directory=str(tmp_path / "l")
        ),
        hostname="",  # host-network pods must not set a hostname
    )
    await rt.run_pod_sandbox(sc)

    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
        writer.close()

    host_server = await asyncio.start_server(echo, "127.0.0.1", 0)
    port = host_server.sockets[0].getsockname()[1]
    pod = make_pod(name="hostpod", uid=sc.uid, containers=(("main", "", False),))
    backend = StreamBackend(pods=StaticPods([pod]), runtime=rt, streaming=rt)
    runner, server_port = await serve_backend(backend, tls_files)
    srv = StreamServer("127.0.0.1", server_port, None, tls_files[0], True)  # type: ignore[arg-type]
    try:
        async with aiohttp.ClientSession() as s:
            async with s.ws_connect(
                f"{srv.base_url}/portForward/default/hostpod?port={port}",
                protocols=("v4.channel.k8s.io",),
                ssl=srv.ws_ssl(),
            ) as ws:
                for _ in range(2):
                    await ws.receive_bytes()
                await ws.send_bytes(b"\x00host network")
                seen = b""
                async with asyncio.timeout(20):
                    while seen != b"host network":
                        seen += (await ws.receive_bytes())[1:]
    finally:
        await runner.cleanup()
        host_server.close()
        await host_server.wait_closed()
