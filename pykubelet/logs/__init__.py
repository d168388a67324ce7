"""Container logs: the CRI log format codec, query options, rendering, and shared following."""

from pykubelet.logs.follow import Chunk, FileTail, Subscription, TailHub
from pykubelet.logs.format import LogRecord, encode_records, format_timestamp, parse_record
from pykubelet.logs.options import (
    LogOptions,
    LogQueryInvalid,
    LogQueryUndecodable,
    parse_log_query,
)
from pykubelet.logs.render import LogRenderer, tail_start
from pykubelet.logs.selection import LogUnavailable, select_container_id
from pykubelet.logs.stream import stream_log

__all__ = [
    "Chunk",
    "FileTail",
    "LogOptions",
    "LogQueryInvalid",
    "LogQueryUndecodable",
    "LogRecord",
    "LogRenderer",
    "LogUnavailable",
    "Subscription",
    "TailHub",
    "encode_records",
    "format_timestamp",
    "parse_log_query",
    "parse_record",
    "select_container_id",
    "stream_log",
    "tail_start",
]
