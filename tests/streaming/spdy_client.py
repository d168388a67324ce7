"""A small asyncio SPDY/3.1 client over the sans-IO session (client role), for tests and bench."""

from __future__ import annotations

import asyncio
import ssl
from collections import defaultdict
from dataclasses import dataclass, field

from pykubelet.streaming import (
    DataReceived,
    GoAwayReceived,
    PingReceived,
    Role,
    SessionClosed,
    SpdySession,
    StreamReset,
)


@dataclass
class SpdyResult:
    data: dict[int, bytes] = field(default_factory=lambda: defaultdict(bytes))
    fin: set[int] = field(default_factory=set)
    resets: dict[int, int] = field(default_factory=dict)
    goaway: bool = False


class SpdyClient:
    def __init__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, head: str
    ) -> None:
        self.reader, self.writer, self.head = reader, writer, head
        self.status = int(head.split(" ", 2)[1])
        self.session = SpdySession(Role.CLIENT)
        self.result = SpdyResult()
        self.events: asyncio.Queue[object] = asyncio.Queue()

    @classmethod
    async def connect(
        cls,
        host: str,
        port: int,
        path: str,
        versions: list[str],
        ssl_ctx: ssl.SSLContext | None = None,
        method: str = "POST",
        upgrade: str = "SPDY/3.1",
        headers: dict[str, str] | None = None,
        body: bytes = b"",
    ) -> SpdyClient:
        reader, writer = await asyncio.open_connection(host, port, ssl=ssl_ctx)
        lines = [f"{method} {path} HTTP/1.1", f"Host: {host}", "Connection: Upgrade"]
        if upgrade:
            lines.append(f"Upgrade: {upgrade}")
        lines += [f"X-Stream-Protocol-Version: {v}" for v in versions]
        lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
        lines.append(f"Content-Length: {len(body)}")
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("utf-8", "surrogateescape"))
        writer.write(body)
        head = (await reader.readuntil(b"\r\n\r\n")).decode()
        return cls(reader, writer, head)

    async def body(self) -> bytes:
        """For refused upgrades: the response body (Content-Length bytes)."""
        length = 0
        for line in self.head.split("\r\n"):
            if line.lower().startswith("content-length:"):
                length = int(line.split(":")[1])
        return await self.reader.readexactly(length)

    def open(self, headers: dict[str, str], *, fin: bool = False) -> int:
        sid, data = self.session.send_syn_stream(tuple(headers.items()), fin=fin)
        self.writer.write(data)
        return sid

    async def send(self, sid: int, data: bytes, *, fin: bool = False) -> None:
        self.writer.write(self.session.send_data(sid, data, fin=fin))
        await self.writer.drain()

    async def pump(self) -> SpdyResult:
        """Read until the server hangs up; echo pings; collect data, FINs and resets."""
        while True:
            chunk = await self.reader.read(256 * 1024)
            for ev in self.session.receive_data(chunk):
                if isinstance(ev, DataReceived):
                    self.result.data[ev.stream_id] += ev.data
                    if ev.fin:
                        self.result.fin.add(ev.stream_id)
                elif isinstance(ev, StreamReset):
                    self.result.resets[ev.stream_id] = ev.status
                elif isinstance(ev, GoAwayReceived):
                    self.result.goaway = True  # the server's last word: hang up, as kubectl does
                elif isinstance(ev, PingReceived) and not ev.is_echo:
                    self.writer.write(self.session.send_ping(ev.ping_id))
                self.events.put_nowait(ev)
                if isinstance(ev, (SessionClosed, GoAwayReceived)):
                    self.writer.close()
                    return self.result

    def close(self) -> None:
        self.writer.close()
