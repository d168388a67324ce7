"""The static pod source: a directory of manifests, one pod per file, as upstream.

Changes are noticed through inotify within milliseconds (a short debounce lets a burst of
writes settle), with a full rescan every ``file_check_frequency_s`` as upstream does, and a
0.5 s poll where inotify is unavailable. Rescans are cheap: files whose (inode, mtime, size)
did not change are not parsed again. Every change emits ``PodUpdate(SET, "file", pods)`` with
the whole set, like upstream's file source.

A bad file (unparsable, an invalid field, a duplicate pod name) is logged once with its file
name and field and left out; it never affects other pods. When two files define the same pod,
the one already running keeps it; otherwise the first file in name order wins (upstream order).
Files whose name starts with ``.`` are ignored, as upstream ignores them.
"""

from __future__ import annotations

import asyncio
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import yaml

from pykubelet.api import Pod
from pykubelet.core.clock import Clock, SystemClock
from pykubelet.core.errors import InvalidInput
from pykubelet.host.inotify import DirectoryWatcher
from pykubelet.pods.static_pod import static_pod_from_document
from pykubelet.pods.types import PodUpdate, UpdateOp

# libyaml's safe loader when PyYAML was built with it: about 5x faster than the pure-Python one,
# which matters when a hundred manifests land at once
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

__all__ = ["StaticDirSource"]

log = logging.getLogger(__name__)

SOURCE = "file"
DEBOUNCE_S = 0.05
POLL_S = 0.5
MAX_MANIFEST_BYTES = 10 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class _Parsed:
    key: tuple[int, int, int]  # inode, mtime_ns, size
    document: object | None
    error: str


class StaticDirSource:
    def __init__(
        self,
        path: str,
        node_name: str,
        updates: asyncio.Queue[PodUpdate],
        *,
        clock: Clock | None = None,
        file_check_frequency_s: float = 20.0,
        use_inotify: bool = True,
    ) -> None:
        self.path = path
        self._use_inotify = use_inotify
        self._node = node_name
        self._updates = updates
        self._clock = clock or SystemClock()
        self._resync_s = file_check_frequency_s if file_check_frequency_s > 0 else 20.0
        self._cache: dict[str, _Parsed] = {}
        self._seen: dict[str, float] = {}  # uid -> first seen (wall)
        self._owner: dict[str, str] = {}  # namespace/name -> file of the emitted pod
        self._errors: dict[str, str] = {}  # file -> message
        self._emitted: tuple[str, ...] | None = None
        self.ready = asyncio.Event()  # set after the first SET is emitted
        self.scans = 0

    def errors(self) -> dict[str, str]:
        """The files currently rejected, with the reason (file name and field)."""
        return dict(self._errors)

    async def run(self) -> None:
        watcher = DirectoryWatcher.create() if self._use_inotify else None
        changed = asyncio.Event()
        try:
            while True:
                watching = watcher is not None and self._dir_exists()
                if watching and watcher is not None:
                    if not watcher.watch_directory(self.path, changed.set):
                        log.warning("cannot watch %s; polling every %ss", self.path, POLL_S)
                        watching = False
                try:
                    await self._scan_until_gone(
                        watcher if watching else None, changed, can_watch=watcher is not None
                    )
                finally:
                    if watching and watcher is not None:
                        watcher.unwatch_directory(self.path, changed.set)
        finally:
            if watcher is not None:
                watcher.close()

    async def _scan_until_gone(
        self, watcher: DirectoryWatcher | None, changed: asyncio.Event, *, can_watch: bool
    ) -> None:
        interval = self._resync_s if watcher is not None else POLL_S
        while True:
            changed.clear()
            self.rescan()
            if watcher is None:
                await self._clock.sleep(interval)
                if self._dir_exists() and can_watch:
                    return  # the directory (re)appeared: try to set up a watch
                continue
            try:
                async with asyncio.timeout(interval):
                    await changed.wait()
            except TimeoutError:
                pass
            if not watcher.is_watching(self.path):
                return
            await asyncio.sleep(DEBOUNCE_S)  # let a burst of writes land before reading

    def _dir_exists(self) -> bool:
        return os.path.isdir(self.path)

    def rescan(self) -> None:
        """Read the directory now and emit a SET if the pods changed."""
        self.scans += 1
        files = self._list_files()
        for gone in set(self._cache) - set(files):
            del self._cache[gone]
        docs: list[tuple[str, Pod]] = []
        errors: dict[str, str] = {}
        now = self._clock.now()
        for path in files:
            parsed = self._parse(path)
            if parsed is None:
                continue
            if parsed.error:
                errors[path] = parsed.error
                continue
            try:
                pod = static_pod_from_document(
                    parsed.document, path=path, node_name=self._node, seen_at=now
                )
            except InvalidInput as e:
                errors[path] = f"{path}: {e}"
                continue
            except Exception as e:  # supervision point: no manifest may stop the source
                log.exception("unexpected failure reading %s", path)
                errors[path] = f"{path}: cannot be read as a pod: {e!r}"
                continue
            seen = self._seen.get(pod.uid)
            if seen is not None and seen != now:
                pod = static_pod_from_document(
                    parsed.document, path=path, node_name=self._node, seen_at=seen
                )
            docs.append((path, pod))
        pods = self._dedupe(docs, errors)
        self._report(errors)
        uids = tuple(p.uid for p in pods)
        self._seen = {uid: self._seen.get(uid, now) for uid in uids}
        if uids != self._emitted:
            self._emitted = uids
            self._updates.put_nowait(PodUpdate(op=UpdateOp.SET, source=SOURCE, pods=tuple(pods)))
        self.ready.set()

    def _list_files(self) -> list[str]:
        try:
            names = sorted(os.listdir(self.path))
        except FileNotFoundError:
            if self._emitted is None or self._emitted:
                log.warning("static pod path %s does not exist", self.path)
            return []
        except OSError as e:
            log.warning("cannot read static pod path %s: %s", self.path, e)
            return []
        return [str(Path(self.path) / n) for n in names if not n.startswith(".")]

    def _parse(self, path: str) -> _Parsed | None:
        try:
            st = os.stat(path)
        except OSError:
            return None
        if not os.path.isfile(path):
            return None
        key = (st.st_ino, st.st_mtime_ns, st.st_size)
        cached = self._cache.get(path)
        if cached is not None and cached.key == key:
            return cached
        parsed = _Parsed(key=key, document=None, error="")
        if st.st_size > MAX_MANIFEST_BYTES:
            parsed = _Parsed(key=key, document=None, error=f"{path}: larger than 10 MiB")
        else:
            try:
                text = Path(path).read_text()
                parsed = _Parsed(key=key, document=yaml.load(text, Loader=_YAML_LOADER), error="")
            except (OSError, UnicodeDecodeError) as e:
                parsed = _Parsed(key=key, document=None, error=f"{path}: cannot read: {e}")
            except yaml.YAMLError as e:
                reason = " ".join(str(e).split())
                parsed = _Parsed(
                    key=key, document=None, error=f"{path}: not valid YAML or JSON: {reason}"
                )
            if not parsed.error and parsed.document is None:
                parsed = _Parsed(key=key, document=None, error=f"{path}: the file is empty")
        self._cache[path] = parsed
        return parsed

    def _dedupe(self, docs: list[tuple[str, Pod]], errors: dict[str, str]) -> list[Pod]:
        by_name: dict[str, list[tuple[str, Pod]]] = {}
        for path, pod in docs:
            by_name.setdefault(f"{pod.meta.namespace}/{pod.meta.name}", []).append((path, pod))
        out: list[Pod] = []
        owners: dict[str, str] = {}
        for full, candidates in by_name.items():
            keep = candidates[0]
            for c in candidates:
                if self._owner.get(full) == c[0]:
                    keep = c
            owners[full] = keep[0]
            out.append(keep[1])
            for path, _pod in candidates:
                if path != keep[0]:
                    errors[path] = (
                        f"{path}: metadata.name: duplicate pod {full!r} (already defined in "
                        f"{keep[0]}); ignored"
                    )
        self._owner = owners
        return sorted(out, key=lambda p: (p.meta.namespace, p.meta.name))

    def _report(self, errors: dict[str, str]) -> None:
        for path, message in errors.items():
            if self._errors.get(path) != message:
                log.error("static pod manifest rejected: %s", message)
        for path in set(self._errors) - set(errors):
            log.info("static pod manifest %s is no longer rejected", path)
        self._errors = errors
