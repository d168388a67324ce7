"""Port-forward semantics: WebSocket port parsing and framing, SPDY stream pairing.

Texts are upstream's exactly (reference §1.3, §3.6).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from pykubelet.core.errors import InvalidInput

__all__ = [
    "PORTFORWARD_SPDY_PROTOCOL",
    "PairComplete",
    "PairError",
    "PairPending",
    "PortForwardPairer",
    "StreamRefused",
    "parse_ws_ports",
    "port_prefix",
    "timeout_message",
]

PORTFORWARD_SPDY_PROTOCOL = "portforward.k8s.io"


def _parse_uint16(raw: str) -> int:
    """Go's ``strconv.ParseUint(raw, 10, 16)``, with its error text."""
    if not raw or not raw.isascii() or not raw.isdigit():
        raise ValueError(f'strconv.ParseUint: parsing "{raw}": invalid syntax')
    value = int(raw)
    if value > 0xFFFF:
        raise ValueError(f'strconv.ParseUint: parsing "{raw}": value out of range')
    return value


def _port(raw: str) -> int:
    try:
        value = _parse_uint16(raw)
    except ValueError as e:
        raise InvalidInput(f'unable to parse "{raw}" as a port: {e}') from None
    if value == 0:
        raise InvalidInput(f'port "{raw}" must be > 0')
    return value


def parse_ws_ports(values: Sequence[str]) -> tuple[int, ...]:
    """The ``port`` query values (repeated and/or comma-separated) in order."""
    if not values:
        raise InvalidInput('query parameter "port" is required')
    ports = []
    for value in values:
        for raw in value.split(","):
            if raw == "":
                raise InvalidInput('query parameter "port" cannot be empty')
            ports.append(_port(raw))
    return tuple(ports)


def port_prefix(port: int) -> bytes:
    """The first payload on both channels of a WS port pair: the port, 2 bytes little-endian."""
    return port.to_bytes(2, "little")


def timeout_message(conn_label: str, request_id: str) -> str:
    return f"(conn={conn_label}, request={request_id}) timed out waiting for streams"


@dataclass(frozen=True, slots=True, kw_only=True)
class StreamRefused:
    """Reset the stream: its headers are unusable (the reason is upstream's text)."""

    stream_id: int
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class PairPending:
    request_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class PairError:
    """Write ``message`` on ``error_stream_id`` (duplicate stream for a request)."""

    request_id: str
    error_stream_id: int | None
    message: str


@dataclass(frozen=True, slots=True, kw_only=True)
class PairComplete:
    request_id: str
    port: int
    data_stream_id: int
    error_stream_id: int


@dataclass(slots=True)
class _Pair:
    port: int
    data: int | None = None
    error: int | None = None
    extra: list[int] = field(default_factory=list)


class PortForwardPairer:
    """Pairs ``data``/``error`` streams by ``requestid`` (fallback: error id, data id - 2)."""

    def __init__(self) -> None:
        self._pending: dict[str, _Pair] = {}

    def pending(self) -> tuple[str, ...]:
        return tuple(self._pending)

    def forget(self, request_id: str) -> None:
        self._pending.pop(request_id, None)

    def add_stream(
        self, stream_id: int, headers: Sequence[tuple[str, str]]
    ) -> StreamRefused | PairPending | PairError | PairComplete:
        h = dict(headers)
        raw_port = h.get("port")
        if raw_port is None:
            return StreamRefused(stream_id=stream_id, reason='"port" header is required')
        try:
            port = _port(raw_port)
        except InvalidInput as e:
            return StreamRefused(stream_id=stream_id, reason=e.reason)
        kind = h.get("streamtype")
        if kind is None:
            return StreamRefused(stream_id=stream_id, reason='"streamType" header is required')
        if kind not in ("data", "error"):
            return StreamRefused(stream_id=stream_id, reason=f'invalid stream type "{kind}"')
        request_id = h.get("requestid")
        if request_id is None:
            request_id = str(stream_id if kind == "error" else stream_id - 2)
        pair = self._pending.setdefault(request_id, _Pair(port=port))
        if getattr(pair, kind) is not None:
            return PairError(
                request_id=request_id,
                error_stream_id=pair.error,
                message=f"error processing stream for request {request_id}: "
                f"{kind} stream already assigned",
            )
        setattr(pair, kind, stream_id)
        if pair.data is None or pair.error is None:
            return PairPending(request_id=request_id)
        del self._pending[request_id]
        return PairComplete(
            request_id=request_id,
            port=pair.port,
            data_stream_id=pair.data,
            error_stream_id=pair.error,
        )
