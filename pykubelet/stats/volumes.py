"""Which of a pod's volumes are measured, and how pod ephemeral storage adds up."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence

from pykubelet.api import Pod
from pykubelet.stats.types import FsSample, VolumeSample

__all__ = ["EMPTY_DIR_PLUGIN", "pod_volume_samples", "sum_fs"]

EMPTY_DIR_PLUGIN = "kubernetes.io~empty-dir"


def pod_volume_samples(
    pod: Pod, volumes_root: str, measure: Callable[[str], FsSample | None]
) -> tuple[VolumeSample, ...]:
    """emptyDir volumes of the pod that exist on disk, in spec order (as upstream lists them)."""
    out = []
    for vol in pod.spec.volumes:
        name = vol.get("name")
        if not isinstance(name, str) or "emptyDir" not in vol:
            continue
        path = os.path.join(volumes_root, pod.meta.uid, "volumes", EMPTY_DIR_PLUGIN, name)
        fs = measure(path)
        if fs is not None:
            out.append(VolumeSample(name=name, fs=fs))
    return tuple(out)


def sum_fs(parts: Sequence[FsSample], base: FsSample | None) -> FsSample | None:
    """Ephemeral storage: the used bytes/inodes of the parts on the capacity of ``base``."""
    if base is None and not parts:
        return None
    used = sum(p.used_bytes or 0 for p in parts)
    inodes_used = sum(p.inodes_used or 0 for p in parts)
    time = base.time if base is not None else parts[0].time
    return FsSample(
        time=time,
        used_bytes=used,
        inodes_used=inodes_used,
        capacity_bytes=base.capacity_bytes if base else None,
        available_bytes=base.available_bytes if base else None,
        inodes=base.inodes if base else None,
        inodes_free=base.inodes_free if base else None,
    )
