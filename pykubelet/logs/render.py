"""Turn CRI log file bytes into what ``/containerLogs`` sends (reference §4.1, §4.2). Pure.

``LogRenderer.feed(lines)`` takes complete lines (a chunk ending in ``\\n``) and returns output
bytes, honouring since, timestamps and limitBytes; ``done`` turns true when the byte limit is
reached. Malformed lines are skipped, as upstream does.
"""

from __future__ import annotations

import re

from pykubelet.logs.format import format_timestamp, parse_record

__all__ = ["LogRenderer", "tail_start"]

# One line per match: a full record's content (group 1), or b"" for any other line (a partial
# record, garbage). Every match consumes exactly one line, so the scan never restarts mid-line.
_FULL_RECORD = re.compile(rb"[0-9][^ \n]* (?:stdout|stderr) F(?::[^ \n]*)? ([^\n]*\n)|[^\n]*\n")


class LogRenderer:
    def __init__(
        self,
        *,
        timestamps: bool = False,
        since_ns: int | None = None,
        limit_bytes: int | None = None,
    ) -> None:
        self._timestamps = timestamps
        self._since = since_ns
        self._remaining = limit_bytes

    @property
    def done(self) -> bool:
        return self._remaining is not None and self._remaining <= 0

    def feed(self, lines: bytes) -> bytes:
        if not lines or self.done:
            return b""
        out = self._fast(lines) if not self._timestamps and self._since is None else None
        if out is None:
            out = self._slow(lines)
        if self._remaining is not None:
            out = out[: self._remaining]
            self._remaining -= len(out)
        return out

    def _fast(self, lines: bytes) -> bytes | None:
        """Every record's content at once, when every line is a well-formed full record."""
        contents = _FULL_RECORD.findall(lines)
        return None if b"" in contents else b"".join(contents)

    def _slow(self, lines: bytes) -> bytes:
        parts: list[bytes] = []
        for line in lines.splitlines():
            try:
                rec = parse_record(line)
            except ValueError:
                continue
            if self._since is not None and rec.timestamp_ns < self._since:
                continue
            if self._timestamps:
                ts = format_timestamp(rec.timestamp_ns, rec.tz_offset_s, fixed=True)
                parts.append(ts.encode() + b" ")
            parts.append(rec.content)
        return b"".join(parts)


def tail_start(data: bytes, n: int) -> int:
    """Offset in ``data`` (complete lines) where its last ``n`` lines begin."""
    if n == 0:
        return len(data)
    pos = len(data) - 1 if data.endswith(b"\n") else len(data)
    for _ in range(n):
        pos = data.rfind(b"\n", 0, pos)
        if pos < 0:
            return 0
    return pos + 1
