"""Encode and parse CRI log records: ``<RFC3339Nano> <stream> <P|F> <message>\\n``."""

from __future__ import annotations

import datetime as _dt
import re
from dataclasses import dataclass

__all__ = ["LogRecord", "encode_records", "format_timestamp", "parse_record", "parse_timestamp"]

_TS = re.compile(
    rb"^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}:\d{2})$"
)


@dataclass(frozen=True, slots=True, kw_only=True)
class LogRecord:
    timestamp_ns: int  # nanoseconds since the epoch
    tz_offset_s: int  # the record's own offset, kept for the timestamps=true prefix
    stream: str  # "stdout" | "stderr"
    partial: bool
    message: bytes  # without the trailing newline (a full record's newline is implied)

    @property
    def content(self) -> bytes:
        """The bytes the container wrote: partial records carry no newline."""
        return self.message if self.partial else self.message + b"\n"


def format_timestamp(timestamp_ns: int, tz_offset_s: int = 0, *, fixed: bool = False) -> str:
    """RFC3339 with nanoseconds. ``fixed`` keeps all 9 digits (the kubelet's timestamps prefix);
    otherwise trailing zeros are trimmed as Go's RFC3339Nano does."""
    secs, nanos = divmod(timestamp_ns, 1_000_000_000)
    tz = _dt.timezone(_dt.timedelta(seconds=tz_offset_s))
    base = _dt.datetime.fromtimestamp(secs, tz=tz).strftime("%Y-%m-%dT%H:%M:%S")
    frac = f"{nanos:09d}"
    if not fixed:
        frac = frac.rstrip("0")
    suffix = "Z" if tz_offset_s == 0 else _dt.datetime.fromtimestamp(secs, tz=tz).strftime("%z")
    if suffix != "Z":
        suffix = suffix[:3] + ":" + suffix[3:]
    return f"{base}.{frac}{suffix}" if frac else f"{base}{suffix}"


def parse_timestamp(raw: bytes) -> tuple[int, int]:
    """(nanoseconds since epoch, offset seconds) from a lenient RFC3339Nano string."""
    m = _TS.match(raw)
    if m is None:
        raise ValueError(f"bad timestamp {raw!r}")
    y, mo, d, h, mi, s = (int(g) for g in m.groups()[:6])
    frac = (m.group(7) or b"").ljust(9, b"0")
    tzraw = m.group(8)
    offset = (
        0
        if tzraw == b"Z"
        else (1 if tzraw[:1] == b"+" else -1) * (int(tzraw[1:3]) * 3600 + int(tzraw[4:6]) * 60)
    )
    tz = _dt.timezone(_dt.timedelta(seconds=offset))
    secs = int(_dt.datetime(y, mo, d, h, mi, s, tzinfo=tz).timestamp())
    return secs * 1_000_000_000 + int(frac), offset


def parse_record(line: bytes) -> LogRecord:
    """Parse one line (with or without its newline); raise ``ValueError`` if malformed."""
    if line.endswith(b"\n"):
        line = line[:-1]
    parts = line.split(b" ", 3)
    if len(parts) < 3:
        raise ValueError("log record has fewer than 3 fields")
    ts, offset = parse_timestamp(parts[0])
    stream = parts[1].decode("ascii", "replace")
    if stream not in ("stdout", "stderr"):
        raise ValueError(f"unexpected stream type {stream!r}")
    tags = parts[2].split(b":")
    message = parts[3] if len(parts) > 3 else b""
    return LogRecord(
        timestamp_ns=ts, tz_offset_s=offset, stream=stream, partial=tags[0] == b"P", message=message
    )


def encode_records(stream: str, data: bytes, timestamp_ns: int, *, max_line: int = 16384) -> bytes:
    """Encode a chunk a container wrote. Complete lines become ``F`` records; a trailing piece
    without newline and pieces of lines longer than ``max_line`` become ``P`` records. (A writer
    that wants to join short unterminated pieces buffers before calling this.)"""
    ts = format_timestamp(timestamp_ns).encode()
    prefix_f = ts + b" " + stream.encode() + b" F "
    prefix_p = ts + b" " + stream.encode() + b" P "
    out = bytearray()
    for line in data.splitlines(keepends=True):
        complete = line.endswith(b"\n")
        body = line[:-1] if complete else line
        while len(body) > max_line:
            out += prefix_p + body[:max_line] + b"\n"
            body = body[max_line:]
        out += (prefix_f if complete else prefix_p) + body + b"\n"
    return bytes(out)
