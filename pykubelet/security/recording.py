"""Exec/attach session recording as asciicast v2 (what ``asciinema play`` and ``cat`` read).

The file starts with a JSON header line (``version`` 2, ``width``, ``height``, ``timestamp``,
``env``, ``title``) followed by one JSON array per event: ``[seconds, "o", text]`` for output and
``[seconds, "r", "WxH"]`` for a terminal resize. Standard error is recorded as output (what a
terminal would show); the standard input of a session without a TTY is recorded as
``[seconds, "i", text]`` (with a TTY the terminal echoes what should be seen, and what it does
not echo, such as passwords, is not recorded). Output bytes are decoded as UTF-8 incrementally,
so a character split across two writes is recorded once, whole; invalid bytes become U+FFFD.

The streaming glue sees only ``SessionRecorder`` (``output``, ``resize``, ``close``) and a
``RecorderFactory``; recording is opt-in (``NullRecorderFactory`` when off). Files are named
after the request's audit ID (``<auditID>.cast``) so the audit log and the recording join up.
"""

from __future__ import annotations

import codecs
import json
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Protocol

from pykubelet.core.clock import Clock, SystemClock
from pykubelet.core.errors import InvalidInput

__all__ = [
    "AsciicastRecorder",
    "AsciicastRecorderFactory",
    "NullRecorder",
    "NullRecorderFactory",
    "RecorderFactory",
    "SessionRecorder",
]

_AUDIT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


class SessionRecorder(Protocol):
    def output(self, data: bytes) -> None: ...

    def input(self, data: bytes) -> None: ...

    def resize(self, width: int, height: int) -> None: ...

    def close(self) -> None: ...


class RecorderFactory(Protocol):
    def open(
        self,
        audit_id: str,
        *,
        width: int = 80,
        height: int = 24,
        command: Sequence[str] = (),
        title: str = "",
    ) -> SessionRecorder: ...


class NullRecorder:
    def output(self, data: bytes) -> None:
        pass

    def input(self, data: bytes) -> None:
        pass

    def resize(self, width: int, height: int) -> None:
        pass

    def close(self) -> None:
        pass


class NullRecorderFactory:
    def open(
        self,
        audit_id: str,
        *,
        width: int = 80,
        height: int = 24,
        command: Sequence[str] = (),
        title: str = "",
    ) -> SessionRecorder:
        return NullRecorder()


class AsciicastRecorder:
    """Writes one asciicast v2 recording to ``stream``; times from ``clock.monotonic``."""

    def __init__(
        self,
        stream: IO[str],
        *,
        width: int,
        height: int,
        clock: Clock,
        title: str = "",
        command: Sequence[str] = (),
        env: dict[str, str] | None = None,
    ) -> None:
        self._stream = stream
        self._clock = clock
        self._start = clock.monotonic()
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._in_decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._closed = False
        header: dict[str, object] = {
            "version": 2,
            "width": max(1, width),
            "height": max(1, height),
            "timestamp": int(clock.now()),
            "env": env if env is not None else {"TERM": "xterm-256color", "SHELL": "/bin/sh"},
        }
        if title:
            header["title"] = title
        if command:
            header["command"] = " ".join(command)
        self._write(header)

    def _write(self, value: object) -> None:
        self._stream.write(json.dumps(value, ensure_ascii=False) + "\n")

    def _elapsed(self) -> float:
        return round(max(0.0, self._clock.monotonic() - self._start), 6)

    def output(self, data: bytes) -> None:
        if self._closed:
            return
        text = self._decoder.decode(data)
        if text:
            self._write([self._elapsed(), "o", text])

    def input(self, data: bytes) -> None:
        if self._closed:
            return
        text = self._in_decoder.decode(data)
        if text:
            self._write([self._elapsed(), "i", text])

    def resize(self, width: int, height: int) -> None:
        if not self._closed:
            self._write([self._elapsed(), "r", f"{width}x{height}"])

    def close(self) -> None:
        if self._closed:
            return
        tail = self._decoder.decode(b"", final=True)
        if tail:
            self._write([self._elapsed(), "o", tail])
        tail = self._in_decoder.decode(b"", final=True)
        if tail:
            self._write([self._elapsed(), "i", tail])
        self._closed = True
        self._stream.close()


class AsciicastRecorderFactory:
    """Creates ``<directory>/<auditID>.cast`` files (mode 0600: recordings hold secrets)."""

    def __init__(self, directory: str | os.PathLike[str], *, clock: Clock | None = None) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._clock = clock or SystemClock()

    def path_for(self, audit_id: str) -> Path:
        if not _AUDIT_ID.fullmatch(audit_id):
            raise InvalidInput(
                "must be a plain identifier (letters, digits, . _ -)", field="auditID"
            )
        return self.directory / f"{audit_id}.cast"

    def open(
        self,
        audit_id: str,
        *,
        width: int = 80,
        height: int = 24,
        command: Sequence[str] = (),
        title: str = "",
    ) -> SessionRecorder:
        path = self.path_for(audit_id)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        stream = os.fdopen(fd, "w", encoding="utf-8")
        return AsciicastRecorder(
            stream,
            width=width,
            height=height,
            clock=self._clock,
            title=title or f"pykubelet session {audit_id}",
            command=command,
        )
