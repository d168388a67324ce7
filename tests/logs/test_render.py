"""Pure log rendering: options parsing, renderer, tail offsets, line-aligned pieces."""

from __future__ import annotations

from pathlib import Path

import pytest

from pykubelet.logs import (
    LogQueryInvalid,
    LogQueryUndecodable,
    LogRenderer,
    encode_records,
    parse_log_query,
    tail_start,
)
from pykubelet.logs.stream import line_pieces

T = 1_700_000_000_123_000_000


def test_line_pieces_never_cut_a_line() -> None:
    data = b"".join(f"{i:05d}-{'x' * (i % 37)}\n".encode() for i in range(2000))
    for size in (1, 7, 64, 1000, 10**6):
        pieces = line_pieces(data, size)
        assert b"".join(pieces) == data
        assert all(p.endswith(b"\n") for p in pieces)


def test_big_chunk_renders_every_line() -> None:
    line = b"y" * 199 + b"\n"
    records = encode_records("stdout", line * 20000, T)
    r = LogRenderer()
    out = b"".join(r.feed(p) for p in line_pieces(records, 1 << 20))
    assert out == line * 20000


def test_fast_and_slow_paths_agree() -> None:
    records = encode_records("stdout", b"a\nbb\n", T) + encode_records("stderr", b"ccc\n", T + 1)
    assert LogRenderer().feed(records) == b"a\nbb\nccc\n"
    assert LogRenderer(since_ns=0).feed(records) == b"a\nbb\nccc\n"  # forces the slow path


def test_timestamps_have_nine_digits() -> None:
    out = LogRenderer(timestamps=True).feed(encode_records("stdout", b"hi\n", T))
    assert out == b"2023-11-14T22:13:20.123000000Z hi\n"


def test_limit_bytes_is_exact_across_feeds() -> None:
    r = LogRenderer(limit_bytes=5)
    assert r.feed(encode_records("stdout", b"abc\n", T)) == b"abc\n"
    assert r.feed(encode_records("stdout", b"def\n", T)) == b"d"
    assert r.done and r.feed(encode_records("stdout", b"g\n", T)) == b""


@pytest.mark.parametrize(
    ("n", "expected"), [(0, b""), (1, b"c\n"), (2, b"b\nc\n"), (3, b"a\nb\nc\n"), (9, b"a\nb\nc\n")]
)
def test_tail_start(n: int, expected: bytes) -> None:
    data = b"a\nb\nc\n"
    assert data[tail_start(data, n) :] == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("true", True),
        ("maybe", True),
        ("", True),
        ("1", True),
        ("false", False),
        ("FALSE", False),
        ("0", False),
    ],
)
def test_booleans_follow_apimachinery(value: str, expected: bool) -> None:
    assert parse_log_query({"timestamps": [value]}).timestamps is expected


@pytest.mark.parametrize("value", ["", " 5", "5_0", "1e3", "9223372036854775808", "0x10"])
def test_integers_follow_parseint(value: str) -> None:
    with pytest.raises(LogQueryUndecodable):
        parse_log_query({"limitBytes": [value]})


def test_query_rules() -> None:
    assert parse_log_query({"tail": [""], "tailLines": ["4"]}).tail_lines == 4
    assert parse_log_query({"limitBytes": ["+7"]}).limit_bytes == 7
    q = parse_log_query({"follow": ["maybe"], "tail": ["3"], "tailLines": ["9"]})
    assert q.follow and q.tail_lines == 3
    assert parse_log_query({"follow": ["false"]}).follow is False
    assert parse_log_query({"tail": ["all"], "tailLines": ["2"]}).tail_lines is None
    assert parse_log_query({"sinceTime": ["2023-11-14T22:13:20Z"]}).since_time_ns == T - 123_000_000
    assert parse_log_query({"sinceSeconds": ["10"]}).since_ns(100.0) == 90_000_000_000
    with pytest.raises(LogQueryUndecodable, match="tailLines"):
        parse_log_query({"tailLines": ["1.5"]})
    with pytest.raises(LogQueryInvalid, match="sinceTime"):
        parse_log_query({"sinceSeconds": ["1"], "sinceTime": ["2023-11-14T22:13:20Z"]})


def test_tail_range_reads_backwards(tmp_path: Path) -> None:
    import os

    from pykubelet.logs.stream import tail_range

    data = b"".join(f"line {i}\n".encode() for i in range(1000)) + b"partial"
    p = tmp_path / "f"
    p.write_bytes(data)
    complete = data[: data.rfind(b"\n") + 1]
    fd = os.open(p, os.O_RDONLY)
    try:
        for n in (None, 0, 1, 2, 999, 1000, 5000):
            for block in (1, 7, 64, 1 << 16):
                start, end = tail_range(fd, len(data), n, block)
                assert end == len(complete)
                expect = 0 if n is None else tail_start(complete, n)
                assert start == expect, (n, block)
    finally:
        os.close(fd)
    q = tmp_path / "g"
    q.write_bytes(b"no newline at all")
    fd = os.open(q, os.O_RDONLY)
    try:
        assert tail_range(fd, 17, 3) == (0, 0)
    finally:
        os.close(fd)
