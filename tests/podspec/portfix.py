"""Helpers for host-port tests: iptables rules by sandbox id, an echo server in a namespace."""

from __future__ import annotations

import asyncio
import socket
import subprocess

from pykubelet.host.netns import socket_in_netns
from tests.prereq import require_binary


def portmap_rules(sandbox_id: str) -> list[str]:
    """The nat-table lines portmap wrote for this sandbox: the jumps whose comment carries
    ``id: "<sandbox id>"`` and every line of the per-sandbox chains (``CNI-DN-…``) they target."""
    exe = require_binary("iptables-save")
    out = subprocess.run([exe, "-t", "nat"], capture_output=True, text=True, check=True).stdout
    lines = out.splitlines()
    tagged = [line for line in lines if f'id: \\"{sandbox_id}\\"' in line]
    chains = {line.rsplit("-j ", 1)[-1].split()[0] for line in tagged if "-j CNI-" in line}
    owned = [line for line in lines if any(line.startswith((f":{c} ", f"-A {c} ")) for c in chains)]
    return tagged + owned


def sandboxes_forwarding(port: int) -> list[str]:
    """Ids of the sandboxes whose portmap rules forward host port ``port``."""
    exe = require_binary("iptables-save")
    out = subprocess.run([exe, "-t", "nat"], capture_output=True, text=True, check=True).stdout
    ids = []
    for line in out.splitlines():
        if f"--dports {port} " in line and ' id: \\"' in line:
            ids.append(line.split(' id: \\"', 1)[1].split("\\", 1)[0])
    return ids


async def echo_server(netns_path: str, host: str, port: int = 0) -> socket.socket:
    sock = socket_in_netns(netns_path, socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen()
    return sock


async def serve(sock: socket.socket) -> None:
    """Answer every connection with ``echo:`` + what it sent, until cancelled."""
    loop = asyncio.get_running_loop()
    while True:
        conn, _ = await loop.sock_accept(sock)
        with conn:
            data = await loop.sock_recv(conn, 100)
            await loop.sock_sendall(conn, b"echo:" + data)


async def talk(host: str, port: int, timeout_s: float = 10.0) -> bytes:
    """Connect from the host namespace, send ``hi``, return the answer."""
    async with asyncio.timeout(timeout_s):
        reader, writer = await asyncio.open_connection(host, port)
        try:
            writer.write(b"hi")
            await writer.drain()
            return await reader.read(100)
        finally:
            writer.close()
