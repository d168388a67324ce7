"""The CRI container log format (reference §4.1), shared by the runtime's writer and the
server's reader so the two can never disagree."""

from pykubelet.logs.format import LogRecord, encode_records, format_timestamp, parse_record

__all__ = ["LogRecord", "encode_records", "format_timestamp", "parse_record"]
