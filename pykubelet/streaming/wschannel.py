"""WebSocket channel framing of the ``channel.k8s.io`` family (the WS framing stays in aiohttp).

A message is one channel byte and a payload (binary protocols) or an ASCII digit and the
base64 of the payload (text protocols). ``v5.channel.k8s.io`` adds a CLOSE signal: the client
sends ``[255, channel]`` to half-close one channel.
"""

from __future__ import annotations

import base64
import binascii
import enum
from collections.abc import Sequence
from dataclasses import dataclass

from pykubelet.streaming.errors import LocalProtocolError, RemoteProtocolError

__all__ = [
    "CLOSE_CHANNEL",
    "ChannelClosed",
    "ChannelMessage",
    "WsChannelCodec",
    "WsProtocol",
    "EXEC_WS_PROTOCOLS",
    "PORTFORWARD_WS_PROTOCOLS",
    "negotiate_ws_protocol",
]

CLOSE_CHANNEL = 255


class WsProtocol(enum.Enum):
    LEGACY = ""  # nothing offered: binary, legacy status
    CHANNEL = "channel.k8s.io"
    BASE64 = "base64.channel.k8s.io"
    V4 = "v4.channel.k8s.io"
    V4_BASE64 = "v4.base64.channel.k8s.io"
    V5 = "v5.channel.k8s.io"

    @property
    def is_base64(self) -> bool:
        return self in (WsProtocol.BASE64, WsProtocol.V4_BASE64)

    @property
    def json_status(self) -> bool:
        return self in (WsProtocol.V4, WsProtocol.V4_BASE64, WsProtocol.V5)


EXEC_WS_PROTOCOLS: tuple[WsProtocol, ...] = (
    WsProtocol.CHANNEL,
    WsProtocol.BASE64,
    WsProtocol.V4,
    WsProtocol.V4_BASE64,
    WsProtocol.V5,  # deliberate: upstream 1.20 answers 403 (docs/streaming.md)
)
PORTFORWARD_WS_PROTOCOLS: tuple[WsProtocol, ...] = (WsProtocol.V4, WsProtocol.V4_BASE64)


def negotiate_ws_protocol(
    offered: Sequence[str], supported: Sequence[WsProtocol]
) -> WsProtocol | None:
    """The first client-offered protocol we support; ``LEGACY`` when none is offered at all.

    ``offered`` is the list of Sec-WebSocket-Protocol values (comma-split, stripped). ``None``
    means no match: upstream answers a raw 403 with an empty body.
    """
    names = [o for o in offered if o]
    if not names:
        return WsProtocol.LEGACY
    by_name = {p.value: p for p in supported}
    for name in names:
        if name in by_name:
            return by_name[name]
    return None


@dataclass(frozen=True, slots=True, kw_only=True)
class ChannelMessage:
    channel: int
    payload: bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class ChannelClosed:
    """v5 CLOSE: the client will send nothing more on ``channel``."""

    channel: int


class WsChannelCodec:
    """Encodes outgoing and decodes incoming messages for one negotiated protocol."""

    def __init__(self, protocol: WsProtocol) -> None:
        self.protocol = protocol
        self.binary = not protocol.is_base64

    def encode(self, channel: int, payload: bytes) -> bytes | str:
        """A binary message (bytes) or a text message (str), as the protocol wants."""
        if not 0 <= channel <= 254 or ((protocol_b64 := not self.binary) and channel > 9):
            raise LocalProtocolError(
                f"channel {channel} cannot be encoded in {self.protocol.value!r}"
            )
        if protocol_b64:
            return chr(48 + channel) + base64.b64encode(payload).decode("ascii")
        return bytes((channel,)) + payload

    def decode(self, message: bytes | str) -> ChannelMessage | ChannelClosed | None:
        """``None`` for what upstream ignores: empty messages and undecodable base64.

        Upstream reads text and binary frames alike as bytes, so either frame type is accepted
        (the Python client sends text frames with a raw channel character, for instance).
        """
        if not message:
            return None
        if self.protocol.is_base64:
            if isinstance(message, bytes):
                message = message.decode("latin-1")
            channel = ord(message[0]) - 48
            if not 0 <= channel <= 9:
                return None
            try:
                payload = base64.b64decode(message[1:], validate=True)
            except (binascii.Error, ValueError):
                return None
            return ChannelMessage(channel=channel, payload=payload)
        data = message.encode("utf-8") if isinstance(message, str) else message
        channel = data[0]
        if channel == CLOSE_CHANNEL and self.protocol is WsProtocol.V5:
            if len(data) != 2:
                raise RemoteProtocolError("v5 CLOSE message must be exactly 2 bytes")
            return ChannelClosed(channel=data[1])
        return ChannelMessage(channel=channel, payload=bytes(data[1:]))
