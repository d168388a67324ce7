"""What the collector reads, as narrow Protocols, and how it is configured."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from pykubelet.runtime.types import ContainerStatus, SandboxStatus

__all__ = ["StatsConfig", "StatsSource", "upper_dirs_under"]


class StatsSource(Protocol):
    """The two runtime listings stats need. Any ``Runtime`` satisfies it.

    Called once per housekeeping pass from the event loop; must not block.
    """

    async def list_pod_sandboxes(self) -> Sequence[SandboxStatus]: ...

    async def list_containers(self, sandbox_id: str | None = None) -> Sequence[ContainerStatus]: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class StatsConfig:
    """Where the node's figures live.

    * ``root_dir``: the agent's root; its filesystem is the node ``fs``.
    * ``pods_cgroup`` / ``runtime_cgroup``: hierarchy-relative cgroups reported as the
      ``pods`` / ``runtime`` system containers ("" to leave them out).
    * ``image_fs_dir``: the image store (``runtime.imageFs``); "" means ``root_dir``.
    * ``pod_volumes_dir``: ``<dir>/<pod uid>/volumes/kubernetes.io~empty-dir/<name>`` holds
      emptyDir volumes, as upstream lays them out; "" means ``<root_dir>/pods``.
    * ``rootfs_dir``: maps a container to its writable layer (the overlay upper dir) so its
      use can be measured; None when the runtime does not say.
    """

    node_name: str
    root_dir: str
    pods_cgroup: str = ""
    runtime_cgroup: str = ""
    image_fs_dir: str = ""
    pod_volumes_dir: str = ""
    housekeeping_interval_s: float = 10.0
    fs_cache_ttl_s: float = 60.0
    proc_root: str = "/proc"
    rootfs_dir: Callable[[ContainerStatus], str | None] | None = None

    def __post_init__(self) -> None:
        from pykubelet.core.errors import InvalidInput

        if not self.node_name:
            raise InvalidInput("must not be empty", field="node_name")
        if self.housekeeping_interval_s <= 0:
            raise InvalidInput(
                f"must be > 0, got {self.housekeeping_interval_s}",
                field="housekeeping_interval_s",
            )
        if self.fs_cache_ttl_s < 0:
            raise InvalidInput(f"must be >= 0, got {self.fs_cache_ttl_s}", field="fs_cache_ttl_s")


def upper_dirs_under(containers_dir: str) -> Callable[[ContainerStatus], str | None]:
    """``rootfs_dir`` for runtimes keeping ``<containers_dir>/<id>/upper`` (the process runtime:
    ``<root>/runtime/containers``)."""
    import os

    def rootfs_dir(c: ContainerStatus) -> str | None:
        return os.path.join(containers_dir, c.id, "upper")

    return rootfs_dir
