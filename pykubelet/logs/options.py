"""``/containerLogs`` query options (reference §1.2, §4.2, §8.5): parse, then validate.

Parsing failures are ``LogQueryUndecodable`` (HTTP 400 ``Unable to decode query.``), rule
violations ``LogQueryInvalid`` (HTTP 422 ``Invalid request.``). The first value of a repeated
parameter wins; a boolean is true for any value except ``0`` and ``false``; unknown parameters
are ignored.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from pykubelet.core.errors import InvalidInput
from pykubelet.logs.format import parse_timestamp

__all__ = ["LogOptions", "LogQueryInvalid", "LogQueryUndecodable", "parse_log_query"]


class LogQueryUndecodable(InvalidInput):
    """A parameter's value has the wrong type (``tailLines=abc``)."""


class LogQueryInvalid(InvalidInput):
    """Values decode but break a rule (``tailLines=-1``, both since parameters)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class LogOptions:
    follow: bool = False
    previous: bool = False
    timestamps: bool = False
    tail_lines: int | None = None  # None: the whole file
    since_seconds: int | None = None
    since_time_ns: int | None = None
    limit_bytes: int | None = None

    def since_ns(self, now_s: float) -> int | None:
        """The earliest record timestamp to send (sinceSeconds is relative to ``now_s``)."""
        if self.since_time_ns is not None:
            return self.since_time_ns
        if self.since_seconds is not None:
            return int((now_s - self.since_seconds) * 1_000_000_000)
        return None


def _first(query: Mapping[str, Sequence[str]], name: str) -> str | None:
    values = query.get(name)
    return values[0] if values else None


_INT64 = re.compile(r"[+-]?[0-9]+")


def _int(query: Mapping[str, Sequence[str]], name: str) -> int | None:
    """Go's ``strconv.ParseInt(s, 10, 64)``: digits with an optional sign, int64 range."""
    raw = _first(query, name)
    if raw is None:
        return None
    if not _INT64.fullmatch(raw) or not -(2**63) <= int(raw) < 2**63:
        raise LogQueryUndecodable(f"not an integer: {raw!r}", field=name)
    return int(raw)


def _bool(query: Mapping[str, Sequence[str]], name: str) -> bool:
    """apimachinery's rule: absent, ``0`` or any-case ``false`` is false; all else is true."""
    raw = _first(query, name)
    return raw is not None and raw != "0" and raw.lower() != "false"


def parse_log_query(query: Mapping[str, Sequence[str]]) -> LogOptions:
    """``LogOptions`` from a multi-valued query mapping (name → values in request order)."""
    q = dict(query)
    tail = _first(q, "tail")
    if tail:  # the legacy name replaces tailLines; "all" means no limit
        q["tailLines"] = [tail]
        if tail == "all":
            del q["tailLines"]
    since_time: int | None = None
    raw_time = _first(q, "sinceTime")
    if raw_time is not None:
        try:
            since_time = parse_timestamp(raw_time.encode())[0]
        except ValueError:
            raise LogQueryUndecodable(f"not RFC3339: {raw_time!r}", field="sinceTime") from None
    opts = LogOptions(
        follow=_bool(q, "follow"),
        previous=_bool(q, "previous"),
        timestamps=_bool(q, "timestamps"),
        tail_lines=_int(q, "tailLines"),
        since_seconds=_int(q, "sinceSeconds"),
        since_time_ns=since_time,
        limit_bytes=_int(q, "limitBytes"),
    )
    if opts.tail_lines is not None and opts.tail_lines < 0:
        raise LogQueryInvalid("must be >= 0", field="tailLines")
    if opts.limit_bytes is not None and opts.limit_bytes < 1:
        raise LogQueryInvalid("must be >= 1", field="limitBytes")
    if opts.since_seconds is not None and opts.since_seconds < 1:
        raise LogQueryInvalid("must be >= 1", field="sinceSeconds")
    if opts.since_seconds is not None and opts.since_time_ns is not None:
        raise LogQueryInvalid("at most one of sinceSeconds or sinceTime", field="sinceTime")
    return opts
