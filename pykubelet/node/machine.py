"""What the node reports about the machine (cadvisor's MachineInfo for upstream): read once.

Each reader tolerates a missing file (containers, VMs without DMI): the field is then empty,
as upstream leaves it.
"""

from __future__ import annotations

import os
import platform
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["MachineFacts", "read_machine_facts"]

_ARCH = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "ppc64le": "ppc64le"}


@dataclass(frozen=True, slots=True, kw_only=True)
class MachineFacts:
    cpu_cores: int
    memory_bytes: int
    ephemeral_storage_bytes: int
    hugepages: dict[str, int] = field(default_factory=dict)  # "hugepages-2Mi" -> bytes
    machine_id: str = ""
    system_uuid: str = ""
    boot_id: str = ""
    kernel_version: str = ""
    os_image: str = ""
    architecture: str = "amd64"


def _read(path: str) -> str:
    try:
        return Path(path).read_text().strip()
    except OSError:
        return ""


def _mem_total() -> int:
    for line in _read("/proc/meminfo").splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) * 1024
    return 0


def _page_size_name(kib: int) -> str:
    for unit, factor in (("Gi", 1 << 20), ("Mi", 1 << 10)):
        if kib % factor == 0:
            return f"hugepages-{kib // factor}{unit}"
    return f"hugepages-{kib}Ki"


def _hugepages() -> dict[str, int]:
    """Every supported page size, with its configured pool (upstream reports 0 for empty)."""
    out: dict[str, int] = {}
    base = Path("/sys/kernel/mm/hugepages")
    try:
        entries = sorted(base.iterdir())
    except OSError:
        return out
    for d in entries:  # hugepages-2048kB
        size = d.name.removeprefix("hugepages-").removesuffix("kB")
        if not size.isdigit():
            continue
        count = _read(str(d / "nr_hugepages"))
        out[_page_size_name(int(size))] = int(size) * 1024 * (int(count) if count.isdigit() else 0)
    return out


def _os_image() -> str:
    for line in _read("/etc/os-release").splitlines():
        if line.startswith("PRETTY_NAME="):
            return line.split("=", 1)[1].strip().strip('"')
    return "Linux"


def read_machine_facts(root_dir: str) -> MachineFacts:
    try:
        st = os.statvfs(root_dir)
        disk = st.f_blocks * st.f_frsize
    except OSError:
        disk = 0
    return MachineFacts(
        cpu_cores=os.cpu_count() or 0,
        memory_bytes=_mem_total(),
        ephemeral_storage_bytes=disk,
        hugepages=_hugepages(),
        machine_id=_read("/etc/machine-id"),
        system_uuid=_read("/sys/class/dmi/id/product_uuid").upper(),
        boot_id=_read("/proc/sys/kernel/random/boot_id"),
        kernel_version=platform.release(),
        os_image=_os_image(),
        architecture=_ARCH.get(platform.machine(), platform.machine()),
    )
