"""SPDY/3.1 frames: typed values, their wire encoding, and the header-block zlib codec.

Pure functions over bytes plus two small stateful codecs (one zlib context per direction, as the
protocol requires). Decoding raises ``RemoteProtocolError``; encoding bad values raises
``LocalProtocolError``. Big-endian everywhere; control frames carry version 3.
"""

from __future__ import annotations

import enum
import struct
import zlib
from dataclasses import dataclass

from pykubelet.streaming.errors import LocalProtocolError, RemoteProtocolError
from pykubelet.streaming.spdy_dictionary import SPDY3_DICTIONARY

__all__ = [
    "DataFrame",
    "Frame",
    "FrameType",
    "GoAwayFrame",
    "GoAwayStatus",
    "HeaderBlockDecoder",
    "HeaderBlockEncoder",
    "Headers",
    "HeadersFrame",
    "PingFrame",
    "RstStatus",
    "RstStreamFrame",
    "SettingsFrame",
    "SynReplyFrame",
    "SynStreamFrame",
    "WindowUpdateFrame",
    "decode_frame",
    "encode_frame",
    "FLAG_FIN",
    "FLAG_UNIDIRECTIONAL",
    "MAX_FRAME_PAYLOAD",
]

SPDY_VERSION = 3
FLAG_FIN = 0x01
FLAG_UNIDIRECTIONAL = 0x02
FLAG_CLEAR_SETTINGS = 0x01
MAX_FRAME_PAYLOAD = (1 << 24) - 1
_MAX_ID = (1 << 31) - 1

Headers = tuple[tuple[str, str], ...]
"""Lower-case names with values; several values for one name are NUL-joined, as on the wire."""


class FrameType(enum.IntEnum):
    SYN_STREAM = 1
    SYN_REPLY = 2
    RST_STREAM = 3
    SETTINGS = 4
    PING = 6
    GOAWAY = 7
    HEADERS = 8
    WINDOW_UPDATE = 9


class RstStatus(enum.IntEnum):
    PROTOCOL_ERROR = 1
    INVALID_STREAM = 2
    REFUSED_STREAM = 3
    UNSUPPORTED_VERSION = 4
    CANCEL = 5
    INTERNAL_ERROR = 6
    FLOW_CONTROL_ERROR = 7
    STREAM_IN_USE = 8
    STREAM_ALREADY_CLOSED = 9
    INVALID_CREDENTIALS = 10
    FRAME_TOO_LARGE = 11


class GoAwayStatus(enum.IntEnum):
    OK = 0
    PROTOCOL_ERROR = 1
    INTERNAL_ERROR = 11


@dataclass(frozen=True, slots=True, kw_only=True)
class DataFrame:
    stream_id: int
    data: bytes
    fin: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class SynStreamFrame:
    stream_id: int
    headers: Headers
    associated_id: int = 0
    priority: int = 0
    slot: int = 0
    fin: bool = False
    unidirectional: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class SynReplyFrame:
    stream_id: int
    headers: Headers = ()
    fin: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class RstStreamFrame:
    stream_id: int
    status: int


@dataclass(frozen=True, slots=True, kw_only=True)
class SettingsFrame:
    entries: tuple[tuple[int, int, int], ...] = ()  # (flags, id, value)
    clear: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class PingFrame:
    ping_id: int


@dataclass(frozen=True, slots=True, kw_only=True)
class GoAwayFrame:
    last_good_stream_id: int
    status: int = GoAwayStatus.OK


@dataclass(frozen=True, slots=True, kw_only=True)
class HeadersFrame:
    stream_id: int
    headers: Headers
    fin: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class WindowUpdateFrame:
    stream_id: int
    delta: int


Frame = (
    DataFrame
    | SynStreamFrame
    | SynReplyFrame
    | RstStreamFrame
    | SettingsFrame
    | PingFrame
    | GoAwayFrame
    | HeadersFrame
    | WindowUpdateFrame
)

_HDR = struct.Struct(">II")
_U32 = struct.Struct(">I")


class HeaderBlockEncoder:
    """Compresses header blocks with one persistent zlib stream, sync-flushed per block.

    ``memLevel`` 1 (zlib's default is 8): a connection's header blocks are a few short
    replies, and the default's 128 KiB of match tables cost each new connection about 45 µs
    to set up on its first block (a tenth of an exec's own time) and that memory for its
    life. The format is the same: any inflater reads it."""

    def __init__(self, level: int = zlib.Z_DEFAULT_COMPRESSION) -> None:
        self._z = zlib.compressobj(
            level, zlib.DEFLATED, 15, 1, zlib.Z_DEFAULT_STRATEGY, SPDY3_DICTIONARY
        )

    def encode(self, headers: Headers) -> bytes:
        raw = bytearray(_U32.pack(len(headers)))
        for name, value in headers:
            if name != name.lower() or not name:
                raise LocalProtocolError(f"SPDY header name must be non-empty lower case: {name!r}")
            n, v = name.encode("utf-8"), value.encode("utf-8")
            raw += _U32.pack(len(n)) + n + _U32.pack(len(v)) + v
        return self._z.compress(bytes(raw)) + self._z.flush(zlib.Z_SYNC_FLUSH)


class HeaderBlockDecoder:
    """Inflates header blocks from the peer's persistent zlib stream; output is bounded."""

    def __init__(self, max_block_bytes: int = 1 << 20) -> None:
        self._z = zlib.decompressobj(15, SPDY3_DICTIONARY)
        self._max = max_block_bytes

    def decode(self, block: bytes) -> Headers:
        try:
            raw = self._z.decompress(block, self._max + 1)
        except zlib.error as e:
            raise RemoteProtocolError(f"bad SPDY header block: {e}") from None
        if len(raw) > self._max or self._z.unconsumed_tail:
            raise RemoteProtocolError("SPDY header block too large", error_status_hint=11)
        return _parse_header_block(raw)


def _parse_header_block(raw: bytes) -> Headers:
    if len(raw) < 4:
        raise RemoteProtocolError("SPDY header block truncated")
    (count,) = _U32.unpack_from(raw, 0)
    pos, out = 4, []
    for _ in range(count):
        parts = []
        for _what in ("name", "value"):
            if pos + 4 > len(raw):
                raise RemoteProtocolError("SPDY header block truncated")
            (n,) = _U32.unpack_from(raw, pos)
            pos += 4
            if pos + n > len(raw):
                raise RemoteProtocolError("SPDY header block truncated")
            try:
                parts.append(raw[pos : pos + n].decode("utf-8"))
            except UnicodeDecodeError:
                raise RemoteProtocolError("SPDY header is not UTF-8") from None
            pos += n
        if not parts[0]:
            raise RemoteProtocolError("empty SPDY header name")
        out.append((parts[0].lower(), parts[1]))
    if pos != len(raw):
        raise RemoteProtocolError("trailing bytes in SPDY header block")
    return tuple(out)


def _check_id(value: int, what: str) -> None:
    if not 0 <= value <= _MAX_ID:
        raise LocalProtocolError(f"{what} out of range: {value}")


def _control(ftype: FrameType, flags: int, payload: bytes) -> bytes:
    if len(payload) > MAX_FRAME_PAYLOAD:
        raise LocalProtocolError("SPDY frame payload too large")
    return (
        _HDR.pack(0x80000000 | (SPDY_VERSION << 16) | ftype, (flags << 24) | len(payload)) + payload
    )


def encode_data_header(stream_id: int, length: int, *, fin: bool = False) -> bytes:
    """The 8-byte header of a DATA frame, so callers can send the payload without copying it."""
    _check_id(stream_id, "stream id")
    if length > MAX_FRAME_PAYLOAD:
        raise LocalProtocolError("SPDY frame payload too large")
    return _HDR.pack(stream_id, ((FLAG_FIN if fin else 0) << 24) | length)


def encode_frame(frame: Frame, encoder: HeaderBlockEncoder | None = None) -> bytes:
    """Serialise one frame; header-bearing frames need the session's ``encoder``."""
    if isinstance(frame, DataFrame):
        return encode_data_header(frame.stream_id, len(frame.data), fin=frame.fin) + frame.data
    if isinstance(frame, (SynStreamFrame, SynReplyFrame, HeadersFrame)):
        if encoder is None:
            raise LocalProtocolError("a header block needs the session's encoder")
        _check_id(frame.stream_id, "stream id")
        block = encoder.encode(frame.headers)
        flags = FLAG_FIN if frame.fin else 0
        if isinstance(frame, SynStreamFrame):
            _check_id(frame.associated_id, "associated stream id")
            if not 0 <= frame.priority <= 7 or not 0 <= frame.slot <= 255:
                raise LocalProtocolError("SYN_STREAM priority must be 0..7 and slot 0..255")
            flags |= FLAG_UNIDIRECTIONAL if frame.unidirectional else 0
            head = _HDR.pack(frame.stream_id, frame.associated_id)
            head += bytes((frame.priority << 5, frame.slot))
            return _control(FrameType.SYN_STREAM, flags, head + block)
        ftype = FrameType.SYN_REPLY if isinstance(frame, SynReplyFrame) else FrameType.HEADERS
        return _control(ftype, flags, _U32.pack(frame.stream_id) + block)
    if isinstance(frame, RstStreamFrame):
        _check_id(frame.stream_id, "stream id")
        return _control(FrameType.RST_STREAM, 0, _HDR.pack(frame.stream_id, frame.status))
    if isinstance(frame, SettingsFrame):
        body = bytearray(_U32.pack(len(frame.entries)))
        for flags, ident, value in frame.entries:
            body += _HDR.pack((flags << 24) | ident, value)
        return _control(FrameType.SETTINGS, FLAG_CLEAR_SETTINGS if frame.clear else 0, bytes(body))
    if isinstance(frame, PingFrame):
        return _control(FrameType.PING, 0, _U32.pack(frame.ping_id))
    if isinstance(frame, GoAwayFrame):
        _check_id(frame.last_good_stream_id, "last good stream id")
        goaway = _HDR.pack(frame.last_good_stream_id, frame.status)
        return _control(FrameType.GOAWAY, 0, goaway)
    if isinstance(frame, WindowUpdateFrame):
        _check_id(frame.stream_id, "stream id")
        if not 1 <= frame.delta <= _MAX_ID:
            raise LocalProtocolError(f"window delta out of range: {frame.delta}")
        return _control(FrameType.WINDOW_UPDATE, 0, _HDR.pack(frame.stream_id, frame.delta))
    raise LocalProtocolError(f"not a SPDY frame: {frame!r}")  # pragma: no cover


def decode_frame(
    buf: bytes | bytearray | memoryview,
    decoder: HeaderBlockDecoder,
    *,
    max_payload_bytes: int = MAX_FRAME_PAYLOAD,
    offset: int = 0,
) -> tuple[Frame | None, int]:
    """Decode the frame at ``offset``: ``(frame, consumed)``; ``(None, 0)`` if incomplete.

    Unknown control frame types are skipped: ``(None, consumed)`` with ``consumed > 0``.
    """
    avail = len(buf) - offset
    if avail < 8:
        return None, 0
    word0, word1 = _HDR.unpack_from(buf, offset)
    flags, length = word1 >> 24, word1 & 0xFFFFFF
    if length > max_payload_bytes:
        raise RemoteProtocolError(
            f"SPDY frame of {length} bytes exceeds the limit", error_status_hint=11
        )
    if avail < 8 + length:
        return None, 0
    payload = bytes(buf[offset + 8 : offset + 8 + length])
    total = 8 + length
    if not word0 & 0x80000000:
        return DataFrame(stream_id=word0, data=payload, fin=bool(flags & FLAG_FIN)), total
    version, ftype = (word0 >> 16) & 0x7FFF, word0 & 0xFFFF
    if version != SPDY_VERSION:
        raise RemoteProtocolError(f"unsupported SPDY version {version}", error_status_hint=4)
    return _decode_control(ftype, flags, payload, decoder), total


def _need(payload: bytes, n: int, what: str) -> None:
    if len(payload) < n:
        raise RemoteProtocolError(f"{what} frame too short ({len(payload)} bytes)")


def _exact(payload: bytes, n: int, what: str) -> None:
    if len(payload) != n:
        raise RemoteProtocolError(f"{what} frame must be {n} bytes, got {len(payload)}")


def _decode_control(
    ftype: int, flags: int, payload: bytes, decoder: HeaderBlockDecoder
) -> Frame | None:
    fin = bool(flags & FLAG_FIN)
    if ftype == FrameType.SYN_STREAM:
        _need(payload, 10, "SYN_STREAM")
        sid, assoc = _HDR.unpack_from(payload, 0)
        return SynStreamFrame(
            stream_id=sid & _MAX_ID,
            associated_id=assoc & _MAX_ID,
            priority=payload[8] >> 5,
            slot=payload[9],
            headers=decoder.decode(payload[10:]),
            fin=fin,
            unidirectional=bool(flags & FLAG_UNIDIRECTIONAL),
        )
    if ftype in (FrameType.SYN_REPLY, FrameType.HEADERS):
        name = "SYN_REPLY" if ftype == FrameType.SYN_REPLY else "HEADERS"
        _need(payload, 4, name)
        sid = _U32.unpack_from(payload, 0)[0] & _MAX_ID
        headers = decoder.decode(payload[4:])
        if ftype == FrameType.SYN_REPLY:
            return SynReplyFrame(stream_id=sid, headers=headers, fin=fin)
        return HeadersFrame(stream_id=sid, headers=headers, fin=fin)
    if ftype == FrameType.RST_STREAM:
        _exact(payload, 8, "RST_STREAM")
        sid, status = _HDR.unpack_from(payload, 0)
        return RstStreamFrame(stream_id=sid & _MAX_ID, status=status)
    if ftype == FrameType.SETTINGS:
        _need(payload, 4, "SETTINGS")
        (count,) = _U32.unpack_from(payload, 0)
        if len(payload) != 4 + 8 * count:
            raise RemoteProtocolError("SETTINGS frame length does not match its entry count")
        entries = tuple(
            (w >> 24, w & 0xFFFFFF, v)
            for w, v in (_HDR.unpack_from(payload, 4 + 8 * i) for i in range(count))
        )
        return SettingsFrame(entries=entries, clear=bool(flags & FLAG_CLEAR_SETTINGS))
    if ftype == FrameType.PING:
        _exact(payload, 4, "PING")
        return PingFrame(ping_id=_U32.unpack_from(payload, 0)[0])
    if ftype == FrameType.GOAWAY:
        _exact(payload, 8, "GOAWAY")
        last, status = _HDR.unpack_from(payload, 0)
        return GoAwayFrame(last_good_stream_id=last & _MAX_ID, status=status)
    if ftype == FrameType.WINDOW_UPDATE:
        _exact(payload, 8, "WINDOW_UPDATE")
        sid, delta = _HDR.unpack_from(payload, 0)
        return WindowUpdateFrame(stream_id=sid & _MAX_ID, delta=delta & _MAX_ID)
    return None  # unknown control types are ignored, as the spec asks
