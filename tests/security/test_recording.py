"""asciicast v2 session recordings."""

from __future__ import annotations

import asyncio
import json
import os
import stat
import subprocess
from pathlib import Path

import pytest

from pykubelet.core.clock import FakeClock
from pykubelet.core.errors import InvalidInput
from pykubelet.security.recording import AsciicastRecorderFactory, NullRecorderFactory
from tests.prereq import require_binary


async def record_session(tmp_path: Path) -> Path:
    clock = FakeClock(start=50.0, wall_offset=1_700_000_000.0)
    factory = AsciicastRecorderFactory(tmp_path / "rec", clock=clock)
    rec = factory.open("3f2a-audit", width=100, height=30, command=["sh", "-i"])
    rec.output(b"$ ")
    await clock.advance(0.25)
    rec.output("héllo wörld\r\n".encode()[:2])  # "h" + first byte of "é": split mid-character
    rec.output("héllo wörld\r\n".encode()[2:])
    await clock.advance(1.0)
    rec.resize(120, 40)
    rec.output(b"\xff\xfebad bytes\r\n")
    rec.close()
    rec.close()  # idempotent
    rec.output(b"after close is ignored")
    return factory.path_for("3f2a-audit")


async def test_file_is_asciicast_v2(tmp_path: Path) -> None:
    path = await record_session(tmp_path)
    lines = path.read_text().splitlines()
    header = json.loads(lines[0])
    assert header == {
        "version": 2,
        "width": 100,
        "height": 30,
        "timestamp": 1_700_000_050,
        "env": {"TERM": "xterm-256color", "SHELL": "/bin/sh"},
        "title": "pykubelet session 3f2a-audit",
        "command": "sh -i",
    }
    events = [json.loads(x) for x in lines[1:]]
    assert events == [
        [0.0, "o", "$ "],
        [0.25, "o", "h"],
        [0.25, "o", "éllo wörld\r\n"],
        [1.25, "r", "120x40"],
        [1.25, "o", "\ufffd\ufffdbad bytes\r\n"],
    ]
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert path.name == "3f2a-audit.cast"


async def test_asciinema_reads_it(tmp_path: Path) -> None:
    asciinema = require_binary("asciinema")
    script = require_binary("script")  # asciinema cat opens /dev/tty: give it a terminal
    path = await record_session(tmp_path)
    out = await asyncio.to_thread(
        subprocess.run,
        [script, "-qec", f"{asciinema} cat {path}", "/dev/null"],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=60,
        check=True,
    )
    assert "héllo wörld".encode() in out.stdout
    assert b"bad bytes" in out.stdout


def test_audit_id_must_be_a_plain_name(tmp_path: Path) -> None:
    factory = AsciicastRecorderFactory(tmp_path)
    for bad in ("../escape", "", "a/b", ".hidden", "x" * 200):
        with pytest.raises(InvalidInput, match="auditID"):
            factory.open(bad)


def test_existing_file_is_never_overwritten(tmp_path: Path) -> None:
    factory = AsciicastRecorderFactory(tmp_path)
    factory.open("same").close()
    with pytest.raises(FileExistsError):
        factory.open("same")


def test_null_recorder_does_nothing(tmp_path: Path) -> None:
    rec = NullRecorderFactory().open("x")
    rec.output(b"data")
    rec.resize(1, 1)
    rec.close()
    assert list(tmp_path.iterdir()) == []
