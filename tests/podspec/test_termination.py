"""FallbackToLogsOnError: the tail of a CRI log file as the termination message."""

from __future__ import annotations

from pathlib import Path

from pykubelet.logs import encode_records
from pykubelet.pods.termination import (
    MAX_MESSAGE_LOG_BYTES,
    MAX_MESSAGE_LOG_LINES,
    fallback_message,
)


def test_last_lines_of_both_streams_in_order(tmp_path: Path) -> None:
    log = tmp_path / "0.log"
    data = encode_records("stdout", b"starting\n", 1_700_000_000_000_000_000)
    data += encode_records("stderr", b"panic: boom\n", 1_700_000_000_000_000_001)
    log.write_bytes(data)
    assert fallback_message(str(log)) == "starting\npanic: boom\n"


def test_at_most_80_lines_and_2048_bytes(tmp_path: Path) -> None:
    log = tmp_path / "0.log"
    lines = b"".join(b"line %03d\n" % i for i in range(200))
    log.write_bytes(encode_records("stdout", lines, 1_700_000_000_000_000_000))
    msg = fallback_message(str(log))
    assert msg.splitlines()[0] == "line 120" and len(msg.splitlines()) == MAX_MESSAGE_LOG_LINES
    big = tmp_path / "1.log"
    big.write_bytes(encode_records("stdout", b"x" * 100 + b"\n" * 1 + b"y" * 5000, 1))
    msg = fallback_message(str(big))
    assert len(msg.encode()) == MAX_MESSAGE_LOG_BYTES and set(msg) == {"y"}


def test_missing_or_garbled_logs_give_no_message(tmp_path: Path) -> None:
    assert fallback_message(str(tmp_path / "absent.log")) == ""
    bad = tmp_path / "bad.log"
    bad.write_bytes(b"not a cri log line\n")
    assert fallback_message(str(bad)) == ""
