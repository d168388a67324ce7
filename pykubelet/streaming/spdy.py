"""``SpdySession``: a sans-IO SPDY/3.1 session (bytes in → events out, calls → bytes out).

Like h11, the session never sends on its own: a peer's PING, an illegal stream or a GOAWAY
becomes an event, and the adapter decides what to write (``send_ping``, ``send_rst_stream``…).
Flow control is not enforced in either direction, matching Go's spdystream, which never sends
WINDOW_UPDATE; incoming SETTINGS and WINDOW_UPDATE frames are accepted and ignored.
"""

from __future__ import annotations

import enum
from typing import assert_never

from pykubelet.streaming.errors import LocalProtocolError, ProtocolError, RemoteProtocolError
from pykubelet.streaming.spdy_events import (
    DataReceived,
    GoAwayReceived,
    HeadersReceived,
    PingReceived,
    ReplyReceived,
    SessionClosed,
    SpdyEvent,
    StreamOpened,
    StreamRejected,
    StreamReset,
)
from pykubelet.streaming.spdy_frames import (
    DataFrame,
    Frame,
    GoAwayFrame,
    GoAwayStatus,
    HeaderBlockDecoder,
    HeaderBlockEncoder,
    Headers,
    HeadersFrame,
    PingFrame,
    RstStatus,
    RstStreamFrame,
    SettingsFrame,
    SynReplyFrame,
    SynStreamFrame,
    WindowUpdateFrame,
    decode_frame,
    encode_data_header,
    encode_frame,
)

__all__ = [
    "DataReceived",
    "GoAwayReceived",
    "HeadersReceived",
    "PingReceived",
    "ReplyReceived",
    "Role",
    "SessionClosed",
    "SessionState",
    "SpdyEvent",
    "SpdySession",
    "StreamOpened",
    "StreamRejected",
    "StreamReset",
    "StreamState",
]


class Role(enum.Enum):
    CLIENT = "client"  # opens odd stream ids, odd ping ids
    SERVER = "server"


class SessionState(enum.Enum):
    OPEN = "open"
    DRAINING = "draining"  # a GOAWAY went one way or the other: no new streams
    CLOSED = "closed"  # EOF seen
    ERROR = "error"


class StreamState(enum.Enum):
    OPEN = "open"
    HALF_CLOSED_LOCAL = "half-closed-local"  # we sent FIN
    HALF_CLOSED_REMOTE = "half-closed-remote"  # peer sent FIN
    CLOSED = "closed"


class _Move(enum.Enum):
    SEND_FIN = "send-fin"
    RECV_FIN = "recv-fin"
    RESET = "reset"


_STREAM_MOVES: dict[tuple[StreamState, _Move], StreamState] = {
    (StreamState.OPEN, _Move.SEND_FIN): StreamState.HALF_CLOSED_LOCAL,
    (StreamState.OPEN, _Move.RECV_FIN): StreamState.HALF_CLOSED_REMOTE,
    (StreamState.HALF_CLOSED_LOCAL, _Move.RECV_FIN): StreamState.CLOSED,
    (StreamState.HALF_CLOSED_REMOTE, _Move.SEND_FIN): StreamState.CLOSED,
    (StreamState.OPEN, _Move.RESET): StreamState.CLOSED,
    (StreamState.HALF_CLOSED_LOCAL, _Move.RESET): StreamState.CLOSED,
    (StreamState.HALF_CLOSED_REMOTE, _Move.RESET): StreamState.CLOSED,
    (StreamState.CLOSED, _Move.RESET): StreamState.CLOSED,
}

_SESSION_MOVES: dict[tuple[SessionState, str], SessionState] = {
    (SessionState.OPEN, "goaway"): SessionState.DRAINING,
    (SessionState.DRAINING, "goaway"): SessionState.DRAINING,
    (SessionState.OPEN, "eof"): SessionState.CLOSED,
    (SessionState.DRAINING, "eof"): SessionState.CLOSED,
}


class SpdySession:
    """One SPDY/3.1 connection seen from ``role``. Limits are constructor arguments."""

    def __init__(
        self,
        role: Role,
        *,
        max_frame_bytes: int = 1 << 20,
        max_header_block_bytes: int = 256 * 1024,
        max_open_streams: int = 1000,
    ) -> None:
        self.role = role
        self.state = SessionState.OPEN
        self._buf = bytearray()
        self._decoder = HeaderBlockDecoder(max_header_block_bytes)
        self._encoder = HeaderBlockEncoder()
        self._max_frame = max_frame_bytes
        self._max_streams = max_open_streams
        self._streams: dict[int, StreamState] = {}
        self._next_local = 1 if role is Role.CLIENT else 2
        self._next_ping = 1 if role is Role.CLIENT else 2
        self.last_remote_stream_id = 0

    # -- receiving ---------------------------------------------------------------------------

    def _on_frame(self, frame: Frame) -> SpdyEvent | None:
        match frame:
            case DataFrame():
                return self._on_data(frame)
            case SynStreamFrame():
                return self._on_syn_stream(frame)
            case SynReplyFrame():
                return self._on_syn_reply(frame)
            case HeadersFrame():
                return self._on_headers(frame)
            case RstStreamFrame():
                return self._on_rst(frame)
            case PingFrame():
                return self._on_ping(frame)
            case GoAwayFrame():
                return self._on_goaway(frame)
            case SettingsFrame() | WindowUpdateFrame():  # nothing for us to act on
                return None
            case _:
                assert_never(frame)

    def receive_data(self, data: bytes) -> list[SpdyEvent]:
        """Feed bytes from the peer; ``b""`` means EOF. Raises ``RemoteProtocolError``."""
        if self.state is SessionState.ERROR:
            raise LocalProtocolError("session is in ERROR state")
        if self.state is SessionState.CLOSED:
            if data:
                raise LocalProtocolError("data received after EOF")
            return []
        try:
            if not data:
                self._move_session("eof")
                return [SessionClosed()]
            # Decode straight from ``data`` when nothing is pending: whole frames are then
            # copied once (into their payload), and only a trailing partial frame is kept.
            buf: bytes | bytearray
            if self._buf:
                self._buf += data
                buf = self._buf
            else:
                buf = data
            events: list[SpdyEvent] = []
            pos = 0
            try:
                while True:
                    frame, used = decode_frame(
                        buf, self._decoder, max_payload_bytes=self._max_frame, offset=pos
                    )
                    if used == 0:
                        break
                    pos += used
                    if frame is not None:
                        event = self._on_frame(frame)
                        if event is not None:
                            events.append(event)
            finally:
                if buf is self._buf:
                    del self._buf[:pos]
                elif pos < len(data):
                    self._buf = bytearray(data[pos:])
            return events
        except ProtocolError as e:
            self.state = SessionState.ERROR
            if isinstance(e, RemoteProtocolError):
                raise
            raise RemoteProtocolError(str(e), error_status_hint=e.error_status_hint) from None

    def _stream_move(self, stream_id: int, move: _Move) -> None:
        state = self._streams[stream_id]
        new = _STREAM_MOVES.get((state, move))
        if new is None:
            raise LocalProtocolError(
                f"stream {stream_id}: cannot {move.value} in state {state.value}"
            )
        if new is StreamState.CLOSED:
            del self._streams[stream_id]
        else:
            self._streams[stream_id] = new

    def _move_session(self, move: str) -> None:
        new = _SESSION_MOVES.get((self.state, move))
        if new is None:
            raise LocalProtocolError(f"session: cannot {move} in state {self.state.value}")
        self.state = new

    def _is_remote_id(self, stream_id: int) -> bool:
        return (stream_id % 2 == 1) == (self.role is Role.SERVER)

    def _on_data(self, f: DataFrame) -> SpdyEvent | None:
        state = self._streams.get(f.stream_id)
        if state is None:
            return None  # spdystream drops data for streams it does not know
        if state in (StreamState.HALF_CLOSED_REMOTE, StreamState.CLOSED):
            del self._streams[f.stream_id]
            return StreamRejected(
                stream_id=f.stream_id,
                status=RstStatus.STREAM_ALREADY_CLOSED,
                reason="data after FIN",
            )
        if f.fin:
            self._stream_move(f.stream_id, _Move.RECV_FIN)
        return DataReceived(stream_id=f.stream_id, data=f.data, fin=f.fin)

    def _on_syn_stream(self, f: SynStreamFrame) -> SpdyEvent | None:
        sid = f.stream_id
        if sid == 0 or not self._is_remote_id(sid) or sid <= self.last_remote_stream_id:
            return StreamRejected(
                stream_id=sid, status=RstStatus.PROTOCOL_ERROR, reason="invalid stream id"
            )
        self.last_remote_stream_id = sid
        if self.state is not SessionState.OPEN or len(self._streams) >= self._max_streams:
            return StreamRejected(stream_id=sid, status=RstStatus.REFUSED_STREAM, reason="refused")
        self._streams[sid] = StreamState.HALF_CLOSED_REMOTE if f.fin else StreamState.OPEN
        if f.unidirectional:
            self._streams[sid] = StreamState.CLOSED if f.fin else StreamState.HALF_CLOSED_LOCAL
            if f.fin:
                del self._streams[sid]
        return StreamOpened(stream_id=sid, headers=f.headers, fin=f.fin)

    def _on_syn_reply(self, f: SynReplyFrame) -> SpdyEvent | None:
        if f.stream_id not in self._streams or self._is_remote_id(f.stream_id):
            return StreamRejected(
                stream_id=f.stream_id, status=RstStatus.INVALID_STREAM, reason="unexpected reply"
            )
        if f.fin:
            self._stream_move(f.stream_id, _Move.RECV_FIN)
        return ReplyReceived(stream_id=f.stream_id, headers=f.headers, fin=f.fin)

    def _on_headers(self, f: HeadersFrame) -> SpdyEvent | None:
        if f.stream_id not in self._streams:
            return None
        if f.fin:
            self._stream_move(f.stream_id, _Move.RECV_FIN)
        return HeadersReceived(stream_id=f.stream_id, headers=f.headers, fin=f.fin)

    def _on_rst(self, f: RstStreamFrame) -> SpdyEvent | None:
        self._streams.pop(f.stream_id, None)
        return StreamReset(stream_id=f.stream_id, status=f.status)

    def _on_ping(self, f: PingFrame) -> SpdyEvent | None:
        ours = (f.ping_id % 2 == 1) == (self.role is Role.CLIENT)
        return PingReceived(ping_id=f.ping_id, is_echo=ours)

    def _on_goaway(self, f: GoAwayFrame) -> SpdyEvent | None:
        self._move_session("goaway")
        return GoAwayReceived(last_good_stream_id=f.last_good_stream_id, status=f.status)

    # -- sending -------------------------------------------------------------------------------

    def _check_usable(self) -> None:
        if self.state in (SessionState.ERROR, SessionState.CLOSED):
            raise LocalProtocolError(f"session is {self.state.value}")

    def _check_can_send(self, stream_id: int) -> None:
        self._check_usable()
        state = self._streams.get(stream_id)
        if state is None or state in (StreamState.HALF_CLOSED_LOCAL, StreamState.CLOSED):
            raise LocalProtocolError(f"stream {stream_id} is not open for sending")

    def stream_state(self, stream_id: int) -> StreamState:
        return self._streams.get(stream_id, StreamState.CLOSED)

    def send_syn_stream(self, headers: Headers, *, fin: bool = False) -> tuple[int, bytes]:
        """Open a stream (client role mostly); returns its id and the bytes to write."""
        self._check_usable()
        if self.state is not SessionState.OPEN:
            raise LocalProtocolError("no new streams after GOAWAY")
        sid = self._next_local
        self._next_local += 2
        self._streams[sid] = StreamState.HALF_CLOSED_LOCAL if fin else StreamState.OPEN
        return sid, encode_frame(
            SynStreamFrame(stream_id=sid, headers=headers, fin=fin), self._encoder
        )

    def send_syn_reply(self, stream_id: int, headers: Headers = (), *, fin: bool = False) -> bytes:
        self._check_can_send(stream_id)
        if fin:
            self._stream_move(stream_id, _Move.SEND_FIN)
        frame = SynReplyFrame(stream_id=stream_id, headers=headers, fin=fin)
        return encode_frame(frame, self._encoder)

    def send_data(self, stream_id: int, data: bytes, *, fin: bool = False) -> bytes:
        """A DATA frame; split payloads above the frame limit into several frames."""
        self._check_can_send(stream_id)
        if fin:
            self._stream_move(stream_id, _Move.SEND_FIN)
        limit = self._max_frame
        if len(data) <= limit:
            return encode_data_header(stream_id, len(data), fin=fin) + data
        view, out = memoryview(data), bytearray()
        for start in range(0, len(data), limit):
            chunk = view[start : start + limit]
            last = start + limit >= len(data)
            out += encode_data_header(stream_id, len(chunk), fin=fin and last)
            out += chunk
        return bytes(out)

    def send_rst_stream(self, stream_id: int, status: int = RstStatus.CANCEL) -> bytes:
        self._check_usable()
        if stream_id in self._streams:
            self._stream_move(stream_id, _Move.RESET)
        return encode_frame(RstStreamFrame(stream_id=stream_id, status=status))

    def send_ping(self, ping_id: int | None = None) -> bytes:
        """Echo a peer's ping (give its id) or start one of our own (no id)."""
        self._check_usable()
        if ping_id is None:
            ping_id = self._next_ping
            self._next_ping += 2
        return encode_frame(PingFrame(ping_id=ping_id))

    def send_goaway(self, status: int = GoAwayStatus.OK) -> bytes:
        self._check_usable()
        self._move_session("goaway")
        frame = GoAwayFrame(last_good_stream_id=self.last_remote_stream_id, status=status)
        return encode_frame(frame)
