"""Image garbage collection by disk use, as the Go kubelet's image GC manager does it.

Every ``period_s`` (upstream: 5 minutes) the collector notes which images exist and which
containers (running or not) use them. When the image filesystem is at least
``imageGCHighThresholdPercent`` full, it removes unused images, least recently used first, until
use is down to ``imageGCLowThresholdPercent``; an image first seen less than
``imageMinimumGCAge`` ago is kept (it may be about to start). A high threshold of 100 disables
it. Runtime-neutral: it needs only ``ImageService`` and ``Runtime.list_containers``.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

from pykubelet.core.clock import Clock
from pykubelet.core.errors import InvalidInput
from pykubelet.registry import normalize_ref
from pykubelet.runtime.errors import RuntimeFailure
from pykubelet.runtime.protocol import ImageService, Runtime
from pykubelet.runtime.types import ImageInfo

__all__ = ["GcResult", "ImageGC"]

log = logging.getLogger(__name__)

GC_PERIOD_S = 300.0


@dataclass(slots=True)
class _Record:
    first_seen: float
    last_used: float
    size_bytes: int


@dataclass(frozen=True, slots=True, kw_only=True)
class GcResult:
    wanted_bytes: int = 0  # 0: below the high threshold, nothing to do
    freed_bytes: int = 0
    removed: tuple[str, ...] = field(default=())  # image ids


class ImageGC:
    def __init__(
        self,
        images: ImageService,
        runtime: Runtime,
        clock: Clock,
        *,
        high_percent: int = 85,
        low_percent: int = 80,
        minimum_age_s: float = 120.0,
        period_s: float = GC_PERIOD_S,
    ) -> None:
        if not 0 <= low_percent < high_percent <= 100:
            raise InvalidInput(
                f"image GC thresholds: need 0 <= low ({low_percent}) < high ({high_percent}) "
                "<= 100",
                field="imageGCLowThresholdPercent",
            )
        self._images = images
        self._runtime = runtime
        self._clock = clock
        self.high_percent = high_percent
        self.low_percent = low_percent
        self.minimum_age_s = minimum_age_s
        self.period_s = period_s
        self._records: dict[str, _Record] = {}

    async def run(self) -> None:
        if self.high_percent >= 100:
            log.info("image garbage collection is off (imageGCHighThresholdPercent: 100)")
            return
        while True:
            try:
                await self.collect()
            except asyncio.CancelledError:
                raise
            except Exception:  # supervision point: the next period tries again
                log.exception("image garbage collection failed")
            await self._clock.sleep(self.period_s)

    async def detect(self) -> set[str]:
        """Note every image and mark those containers use; return the ids in use."""
        now = self._clock.now()
        images = await self._images.list_images()
        containers = await self._runtime.list_containers()
        used_refs = {c.image_ref for c in containers} | {_norm(c.image) for c in containers}
        in_use = {i.id for i in images if _used(i, used_refs)}
        for i in images:
            rec = self._records.get(i.id)
            if rec is None:
                rec = self._records[i.id] = _Record(now, 0.0, i.size_bytes)
            rec.size_bytes = i.size_bytes
            if i.id in in_use:
                rec.last_used = now
        for gone in set(self._records) - {i.id for i in images}:
            del self._records[gone]
        return in_use

    async def collect(self) -> GcResult:
        """One pass: free space down to the low threshold if use is over the high one."""
        in_use = await self.detect()
        fs = await self._images.image_fs_usage()
        if fs.capacity_bytes <= 0 or self.high_percent >= 100:
            return GcResult()
        used_percent = 100 - fs.available_bytes * 100 // fs.capacity_bytes
        if used_percent < self.high_percent:
            return GcResult()
        wanted = fs.capacity_bytes * (100 - self.low_percent) // 100 - fs.available_bytes
        if wanted <= 0:
            return GcResult()
        log.info(
            "image filesystem %d%% used (high threshold %d%%): freeing %d bytes",
            used_percent,
            self.high_percent,
            wanted,
        )
        now = self._clock.now()
        candidates = sorted(
            (rec.last_used, rec.first_seen, image_id)
            for image_id, rec in self._records.items()
            if image_id not in in_use
        )
        freed, removed = 0, []
        for _last, first_seen, image_id in candidates:
            if freed >= wanted:
                break
            if now - first_seen < self.minimum_age_s:
                continue
            try:
                await self._images.remove_image(image_id)
            except RuntimeFailure as e:
                log.warning("image GC: removing %s failed: %s", image_id, e)
                continue
            freed += self._records.pop(image_id).size_bytes
            removed.append(image_id)
        if freed < wanted:
            log.warning(
                "image GC: wanted to free %d bytes, but freed %d bytes (%d images in use)",
                wanted,
                freed,
                len(in_use),
            )
        return GcResult(wanted_bytes=wanted, freed_bytes=freed, removed=tuple(removed))


def _norm(ref: str) -> str:
    try:
        return normalize_ref(ref)
    except InvalidInput:
        return ref


def _used(image: ImageInfo, refs: set[str]) -> bool:
    return (
        image.id in refs
        or any(t in refs for t in image.repo_tags)
        or any(d in refs for d in image.repo_digests)
    )
