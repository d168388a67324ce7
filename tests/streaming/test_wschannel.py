"""channel.k8s.io framing: negotiation, binary and base64 messages, v5 CLOSE."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pykubelet.streaming import (
    EXEC_WS_PROTOCOLS,
    PORTFORWARD_WS_PROTOCOLS,
    ChannelClosed,
    ChannelMessage,
    LocalProtocolError,
    RemoteProtocolError,
    WsChannelCodec,
    WsProtocol,
    negotiate_ws_protocol,
)


@pytest.mark.parametrize(
    ("offered", "expected"),
    [
        ([], WsProtocol.LEGACY),
        ([""], WsProtocol.LEGACY),
        (["v4.channel.k8s.io", "channel.k8s.io"], WsProtocol.V4),
        (["channel.k8s.io", "v4.channel.k8s.io"], WsProtocol.CHANNEL),  # client order wins
        (["v5.channel.k8s.io", "v4.channel.k8s.io"], WsProtocol.V5),
        (["nope", "base64.channel.k8s.io"], WsProtocol.BASE64),
        (["nope"], None),
    ],
)
def test_exec_negotiation(offered: list[str], expected: WsProtocol | None) -> None:
    assert negotiate_ws_protocol(offered, EXEC_WS_PROTOCOLS) is expected


def test_port_forward_negotiation_excludes_legacy_names() -> None:
    assert negotiate_ws_protocol(["channel.k8s.io"], PORTFORWARD_WS_PROTOCOLS) is None
    assert negotiate_ws_protocol(["v4.base64.channel.k8s.io"], PORTFORWARD_WS_PROTOCOLS) is (
        WsProtocol.V4_BASE64
    )


VECTORS = [
    ("binary-stdout", WsProtocol.V4, 1, b"hi", b"\x01hi"),
    ("binary-empty-first", WsProtocol.CHANNEL, 1, b"", b"\x01"),
    ("base64-stdout", WsProtocol.V4_BASE64, 1, b"hi", "1aGk="),
    ("base64-empty-first", WsProtocol.BASE64, 3, b"", "3"),
    ("v5-error", WsProtocol.V5, 3, b"{}", b"\x03{}"),
]


@pytest.mark.parametrize(("name", "proto", "ch", "payload", "wire"), VECTORS)
def test_vectors_both_ways(
    name: str, proto: WsProtocol, ch: int, payload: bytes, wire: bytes | str
) -> None:
    codec = WsChannelCodec(proto)
    assert codec.encode(ch, payload) == wire
    decoded = codec.decode(wire)
    if payload or isinstance(wire, bytes):
        assert decoded == ChannelMessage(channel=ch, payload=payload)


def test_ignored_inputs() -> None:
    b64 = WsChannelCodec(WsProtocol.V4_BASE64)
    assert b64.decode("") is None
    assert b64.decode("0not base64!") is None
    assert b64.decode("x" + "aGk=") is None
    binary = WsChannelCodec(WsProtocol.V4)
    assert binary.decode(b"") is None
    # text frames on binary protocols carry a raw channel character (the Python client does it)
    assert binary.decode("\x00ls\n") == ChannelMessage(channel=0, payload=b"ls\n")


def test_v5_close_signal() -> None:
    v5 = WsChannelCodec(WsProtocol.V5)
    assert v5.decode(b"\xff\x00") == ChannelClosed(channel=0)
    with pytest.raises(RemoteProtocolError):
        v5.decode(b"\xff\x00\x00")
    # before v5, 255 is just a channel number nobody reads
    assert WsChannelCodec(WsProtocol.V4).decode(b"\xff\x00") == ChannelMessage(
        channel=255, payload=b"\x00"
    )


def test_channels_that_cannot_be_encoded() -> None:
    with pytest.raises(LocalProtocolError):
        WsChannelCodec(WsProtocol.BASE64).encode(10, b"")
    with pytest.raises(LocalProtocolError):
        WsChannelCodec(WsProtocol.V4).encode(255, b"")


@given(st.one_of(st.binary(max_size=50), st.text(max_size=50)))
def test_fuzz_decode(message: bytes | str) -> None:
    for proto in WsProtocol:
        try:
            WsChannelCodec(proto).decode(message)
        except RemoteProtocolError:
            pass
