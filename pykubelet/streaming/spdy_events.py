"""Events a ``SpdySession`` hands back from ``receive_data``: frozen values named for what
happened; a reply, where one is due, is the caller's to send."""

from __future__ import annotations

from dataclasses import dataclass

from pykubelet.streaming.spdy_frames import Headers, RstStatus

__all__ = [
    "DataReceived",
    "GoAwayReceived",
    "HeadersReceived",
    "PingReceived",
    "ReplyReceived",
    "SessionClosed",
    "SpdyEvent",
    "StreamOpened",
    "StreamRejected",
    "StreamReset",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class StreamOpened:
    """The peer opened a stream (SYN_STREAM); reply with ``send_syn_reply`` or reset it."""

    stream_id: int
    headers: Headers
    fin: bool = False

    def header(self, name: str) -> str | None:
        for key, value in self.headers:
            if key == name:
                return value
        return None


@dataclass(frozen=True, slots=True, kw_only=True)
class ReplyReceived:
    stream_id: int
    headers: Headers
    fin: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class HeadersReceived:
    stream_id: int
    headers: Headers
    fin: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class DataReceived:
    stream_id: int
    data: bytes
    fin: bool = False  # the peer half-closed the stream with this frame


@dataclass(frozen=True, slots=True, kw_only=True)
class StreamReset:
    stream_id: int
    status: int


@dataclass(frozen=True, slots=True, kw_only=True)
class StreamRejected:
    """The peer misused a stream; the reply due is ``send_rst_stream(stream_id, status)``."""

    stream_id: int
    status: RstStatus
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class PingReceived:
    """``is_echo``: an answer to our own ping; otherwise echo it with ``send_ping(ping_id)``."""

    ping_id: int
    is_echo: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class GoAwayReceived:
    last_good_stream_id: int
    status: int


@dataclass(frozen=True, slots=True, kw_only=True)
class SessionClosed:
    """The transport reached EOF."""


SpdyEvent = (
    StreamOpened
    | ReplyReceived
    | HeadersReceived
    | DataReceived
    | StreamReset
    | StreamRejected
    | PingReceived
    | GoAwayReceived
    | SessionClosed
)
