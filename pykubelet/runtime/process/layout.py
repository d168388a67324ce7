"""Paths of the runtime's on-disk state (see records.py for what each file holds)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

__all__ = ["RuntimeLayout"]


@dataclass(frozen=True, slots=True, kw_only=True)
class RuntimeLayout:
    root: Path  # the agent's root dir

    @property
    def state(self) -> Path:
        return self.root / "runtime"

    @property
    def bin(self) -> Path:
        return self.root / "bin"

    @property
    def images(self) -> Path:
        return self.root / "images"

    @property
    def logs(self) -> Path:
        return self.root / "logs" / "pods"

    def sandbox_dir(self, sandbox_id: str) -> Path:
        return self.state / "sandboxes" / sandbox_id

    def container_dir(self, container_id: str) -> Path:
        return self.state / "containers" / container_id

    def shim_dir(self, container_id: str) -> Path:
        return self.container_dir(container_id) / "shim"

    def sandbox_ids(self) -> list[str]:
        d = self.state / "sandboxes"
        return (
            sorted(p.name for p in d.iterdir() if (p / "sandbox.json").exists())
            if d.is_dir()
            else []
        )

    def container_ids(self) -> list[str]:
        d = self.state / "containers"
        if not d.is_dir():
            return []
        return sorted(p.name for p in d.iterdir() if (p / "container.json").exists())
