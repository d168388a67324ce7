"""SPDY/3.1 frames against byte vectors written from the SPDY/3 draft, fed every way."""

from __future__ import annotations

import hashlib
import zlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pykubelet.streaming import LocalProtocolError, RemoteProtocolError
from pykubelet.streaming.spdy_dictionary import SPDY3_DICTIONARY
from pykubelet.streaming.spdy_frames import (
    DataFrame,
    Frame,
    GoAwayFrame,
    HeaderBlockDecoder,
    HeaderBlockEncoder,
    PingFrame,
    RstStreamFrame,
    SettingsFrame,
    SynReplyFrame,
    SynStreamFrame,
    WindowUpdateFrame,
    decode_frame,
    encode_frame,
)

# (name, frame, bytes): control frames start 0x80 0x03 (C bit, version 3) then the type.
VECTORS: list[tuple[str, Frame, bytes]] = [
    ("data", DataFrame(stream_id=1, data=b"hi"), b"\x00\x00\x00\x01\x00\x00\x00\x02hi"),
    (
        "data-fin-empty",
        DataFrame(stream_id=3, data=b"", fin=True),
        b"\x00\x00\x00\x03\x01\x00\x00\x00",
    ),
    (
        "data-max-id",
        DataFrame(stream_id=2**31 - 1, data=b"x"),
        b"\x7f\xff\xff\xff\x00\x00\x00\x01x",
    ),
    (
        "rst-cancel",
        RstStreamFrame(stream_id=5, status=5),
        b"\x80\x03\x00\x03\x00\x00\x00\x08\x00\x00\x00\x05\x00\x00\x00\x05",
    ),
    (
        "settings-initial-window",
        SettingsFrame(entries=((0, 7, 65536),)),
        b"\x80\x03\x00\x04\x00\x00\x00\x0c\x00\x00\x00\x01\x00\x00\x00\x07\x00\x01\x00\x00",
    ),
    (
        "settings-clear-empty",
        SettingsFrame(clear=True),
        b"\x80\x03\x00\x04\x01\x00\x00\x04\x00\x00\x00\x00",
    ),
    ("ping", PingFrame(ping_id=1), b"\x80\x03\x00\x06\x00\x00\x00\x04\x00\x00\x00\x01"),
    (
        "goaway-ok",
        GoAwayFrame(last_good_stream_id=7, status=0),
        b"\x80\x03\x00\x07\x00\x00\x00\x08\x00\x00\x00\x07\x00\x00\x00\x00",
    ),
    (
        "window-update",
        WindowUpdateFrame(stream_id=0, delta=65536),
        b"\x80\x03\x00\x09\x00\x00\x00\x08\x00\x00\x00\x00\x00\x01\x00\x00",
    ),
]


def test_dictionary_is_the_published_one() -> None:
    assert len(SPDY3_DICTIONARY) == 1423
    assert hashlib.sha256(SPDY3_DICTIONARY).hexdigest() == (
        "51d27341373f923f3cd88e1eb7162aeaa3723d7585ff2399201dc06498407f02"
    )
    assert zlib.adler32(SPDY3_DICTIONARY) == 0xE3C6A7C2
    assert SPDY3_DICTIONARY.startswith(b"\x00\x00\x00\x07options\x00\x00\x00\x04head")


@pytest.mark.parametrize(("name", "frame", "wire"), VECTORS, ids=[v[0] for v in VECTORS])
def test_encode_matches_vector(name: str, frame: Frame, wire: bytes) -> None:
    assert encode_frame(frame) == wire


@pytest.mark.parametrize(("name", "frame", "wire"), VECTORS, ids=[v[0] for v in VECTORS])
def test_decode_at_every_split(name: str, frame: Frame, wire: bytes) -> None:
    dec = HeaderBlockDecoder()
    for cut in range(len(wire)):
        assert decode_frame(wire[:cut], dec) == (None, 0)
    assert decode_frame(wire + b"\x00trailing", dec) == (frame, len(wire))


def test_header_blocks_share_one_zlib_context_per_direction() -> None:
    enc, dec = HeaderBlockEncoder(), HeaderBlockDecoder()
    first = SynStreamFrame(stream_id=1, headers=(("streamtype", "error"),))
    second = SynStreamFrame(stream_id=3, headers=(("streamtype", "stdin"), ("x", "a\x00b")))
    w1, w2 = encode_frame(first, enc), encode_frame(second, enc)
    # The second block depends on the first one's window: a fresh decoder cannot read it.
    with pytest.raises(RemoteProtocolError):
        decode_frame(w2, HeaderBlockDecoder())
    assert decode_frame(w1, dec) == (first, len(w1))
    assert decode_frame(w2, dec) == (second, len(w2))
    # Sync-flushed, not finished: every block ends with the empty stored block 00 00 ff ff.
    assert w1.endswith(b"\x00\x00\xff\xff") and w2.endswith(b"\x00\x00\xff\xff")


def test_header_block_written_by_plain_zlib_with_the_dictionary() -> None:
    raw = b"\x00\x00\x00\x01" + b"\x00\x00\x00\x0astreamtype" + b"\x00\x00\x00\x05error"
    z = zlib.compressobj(9, zlib.DEFLATED, 15, 8, zlib.Z_DEFAULT_STRATEGY, SPDY3_DICTIONARY)
    block = z.compress(raw) + z.flush(zlib.Z_SYNC_FLUSH)
    payload = b"\x00\x00\x00\x02" + block
    wire = b"\x80\x03\x00\x02\x00" + len(payload).to_bytes(3, "big") + payload
    frame, used = decode_frame(wire, HeaderBlockDecoder())
    assert frame == SynReplyFrame(stream_id=2, headers=(("streamtype", "error"),))
    assert used == len(wire)


@pytest.mark.parametrize(
    ("name", "wire"),
    [
        ("wrong-version", b"\x80\x02\x00\x06\x00\x00\x00\x04\x00\x00\x00\x01"),
        ("ping-too-long", b"\x80\x03\x00\x06\x00\x00\x00\x05\x00\x00\x00\x01\x00"),
        ("rst-too-short", b"\x80\x03\x00\x03\x00\x00\x00\x04\x00\x00\x00\x01"),
        ("settings-count-mismatch", b"\x80\x03\x00\x04\x00\x00\x00\x04\x00\x00\x00\x02"),
        ("syn-stream-bad-zlib", b"\x80\x03\x00\x01\x00\x00\x00\x0c" + b"\x00" * 10 + b"\xff\xff"),
    ],
)
def test_malformed_frames_are_remote_errors(name: str, wire: bytes) -> None:
    with pytest.raises(RemoteProtocolError):
        decode_frame(wire, HeaderBlockDecoder())


def test_oversized_frames_are_refused_before_buffering() -> None:
    header = b"\x00\x00\x00\x01\x00\x10\x00\x00"  # 1 MiB data frame announced
    with pytest.raises(RemoteProtocolError):
        decode_frame(header, HeaderBlockDecoder(), max_payload_bytes=65536)


def test_local_errors_for_bad_values() -> None:
    with pytest.raises(LocalProtocolError):
        encode_frame(DataFrame(stream_id=2**31, data=b""))
    with pytest.raises(LocalProtocolError):
        encode_frame(SynStreamFrame(stream_id=1, headers=(("Upper", "x"),)), HeaderBlockEncoder())
    with pytest.raises(LocalProtocolError):
        encode_frame(SynReplyFrame(stream_id=1))  # no encoder for a header block


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_fuzz_decode_yields_frames_or_remote_error(data: bytes) -> None:
    dec = HeaderBlockDecoder(max_block_bytes=4096)
    pos = 0
    try:
        while pos < len(data):
            _, used = decode_frame(data[pos:], dec, max_payload_bytes=4096)
            if used == 0:
                break
            pos += used
    except RemoteProtocolError:
        pass
