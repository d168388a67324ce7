"""The runtime's in-memory index of its records, kept in step with the disk.

Records are written once, so they can be kept in memory: the runtime adds and drops entries as
it creates and removes them, and a listing only re-reads the directory when its mtime says that
something else (another agent on the same root, an operator) added or removed an entry. An
mtime younger than ``_SETTLE_NS`` is not trusted (file times are coarse: two changes in one tick
share one mtime), and ids whose record file was not written yet are re-checked on every listing.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Generic, TypeVar

from pykubelet.runtime.process.records import ContainerRecord, SandboxRecord, read_json

__all__ = ["RecordIndex"]

R = TypeVar("R", SandboxRecord, ContainerRecord)

_SETTLE_NS = 200_000_000


class RecordIndex(Generic[R]):
    """Records of one kind under ``base/<id>/<file_name>``."""

    def __init__(self, base: Path, file_name: str, load: Callable[[Any], R]) -> None:
        self._base = base
        self._file = file_name
        self._load: Callable[[Any], R] = load
        self._records: dict[str, R] = {}
        self._pending: set[str] = set()  # directories seen without their record file yet
        self._stamp: int | None = None  # the directory's mtime when it was last read in full

    def _read(self, rid: str) -> R | None:
        try:
            return self._load(read_json(self._base / rid / self._file))
        except (FileNotFoundError, NotADirectoryError, ValueError, KeyError, TypeError):
            return None

    def refresh(self) -> None:
        """Pick up entries added or removed behind the runtime's back (cheap when none were)."""
        try:
            mtime = os.stat(self._base).st_mtime_ns
        except FileNotFoundError:
            self._records.clear()
            self._pending.clear()
            self._stamp = None
            return
        if mtime != self._stamp:
            names = set(os.listdir(self._base))
            for rid in set(self._records) - names:
                del self._records[rid]
            self._pending = names - set(self._records)
            settled = time.time_ns() - mtime > _SETTLE_NS
            self._stamp = mtime if settled else None
        for rid in list(self._pending):
            rec = self._read(rid)
            if rec is not None:
                self._records[rid] = rec
                self._pending.discard(rid)

    def all(self) -> list[R]:
        self.refresh()
        return [self._records[k] for k in sorted(self._records)]

    def get(self, rid: str) -> R | None:
        """The record, or None if it is not (or no longer) on disk."""
        rec = self._records.get(rid)
        if rec is not None:
            if (self._base / rid / self._file).exists():
                return rec
            self._records.pop(rid, None)
            return None
        if not rid or "/" in rid or rid in (".", ".."):
            return None
        rec = self._read(rid)
        if rec is not None:
            self._records[rid] = rec
            self._pending.discard(rid)
        return rec

    def add(self, rec: R) -> None:
        """A record this runtime has just written."""
        self._records[rec.id] = rec
        self._pending.discard(rec.id)

    def drop(self, rid: str) -> None:
        self._records.pop(rid, None)
        self._pending.discard(rid)
