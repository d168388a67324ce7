"""What the process runtime can enforce on this host, decided once at start-up."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from pykubelet.runtime.cgroups import CgroupLayout

__all__ = ["RuntimeCapabilities", "detect_capabilities", "detect_host_ip"]


@dataclass(frozen=True, slots=True, kw_only=True)
class RuntimeCapabilities:
    """Enforced isolation. Without root the runtime runs plain processes and says so."""

    namespaces: bool  # sandbox net/ipc/uts/pid and per-container pid + mount namespaces
    overlay: bool  # image root filesystems through overlayfs
    cgroups: str  # "v1", "v2", "hybrid" or "none" (limits not enforced)
    user_switch: bool  # runAsUser / runAsGroup / supplementalGroups / capabilities
    exec_enter: bool  # exec enters the container's namespaces, root and credentials

    def warnings(self) -> list[str]:
        """One line per missing enforcement, for the agent's start-up log."""
        out = []
        if not self.namespaces:
            out.append("process runtime: no namespaces (not root): pods share the host's network")
        if not self.overlay:
            out.append("process runtime: no overlayfs: only the 'host' image can run")
        if self.cgroups == "none":
            out.append("process runtime: no writable cgroups: resource limits are NOT enforced")
        if not self.user_switch:
            out.append("process runtime: runAsUser/capabilities cannot be applied (not root)")
        return out


def _has_overlay() -> bool:
    try:
        return "overlay" in Path("/proc/filesystems").read_text()
    except OSError:
        return False


def detect_capabilities(layout: CgroupLayout) -> RuntimeCapabilities:
    root = os.geteuid() == 0
    return RuntimeCapabilities(
        namespaces=root,
        overlay=root and _has_overlay(),
        cgroups=layout.version if root else "none",
        user_switch=root,
        exec_enter=root,
    )


def detect_host_ip() -> str:
    """The host's address for the default route, else its name's (no packets, no exec)."""
    from pykubelet.host.nodeip import choose_node_ip

    return choose_node_ip("")
