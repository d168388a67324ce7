"""A StatsSource over cgroups a test created: the runtime listing, nothing else faked."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from pykubelet.runtime.types import (
    ContainerState,
    ContainerStatus,
    SandboxState,
    SandboxStatus,
)


@dataclass
class ListingSource:
    sandboxes: list[SandboxStatus] = field(default_factory=list)
    containers: list[ContainerStatus] = field(default_factory=list)

    async def list_pod_sandboxes(self) -> Sequence[SandboxStatus]:
        return list(self.sandboxes)

    async def list_containers(self, sandbox_id: str | None = None) -> Sequence[ContainerStatus]:
        return [c for c in self.containers if sandbox_id in (None, c.sandbox_id)]

    def add_pod(
        self,
        *,
        name: str,
        uid: str,
        cgroup_parent: str,
        containers: Sequence[tuple[str, str, int]],  # (name, cgroup path, pid)
        namespace: str = "default",
    ) -> None:
        sb_id = f"sb-{uid}"
        pid0 = containers[0][2] if containers else 0
        self.sandboxes.append(
            SandboxStatus(
                id=sb_id,
                name=name,
                namespace=namespace,
                uid=uid,
                attempt=0,
                state=SandboxState.READY,
                created_at=time.time() - 5,
                netns_path=f"/proc/{pid0}/ns/net" if pid0 else "",
                cgroup_parent=cgroup_parent,
            )
        )
        for cname, cg, pid in containers:
            self.containers.append(
                ContainerStatus(
                    id=f"c-{uid}-{cname}",
                    sandbox_id=sb_id,
                    name=cname,
                    attempt=0,
                    state=ContainerState.RUNNING,
                    image=f"localhost/{cname}:1",
                    created_at=time.time() - 4,
                    started_at=time.time() - 4,
                    pid=pid,
                    cgroup_path=cg,
                )
            )
