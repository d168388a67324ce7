"""SecurityConfig → what init.py applies: the capability set and the user/group ids."""

from __future__ import annotations

from pathlib import Path

from pykubelet.runtime.errors import CreateContainerError
from pykubelet.runtime.types import SecurityConfig

__all__ = ["CAPABILITY_NUMBERS", "DEFAULT_CAPABILITIES", "capability_set", "resolve_user"]

CAPABILITY_NUMBERS: dict[str, int] = {
    name: i
    for i, name in enumerate(
        "CHOWN DAC_OVERRIDE DAC_READ_SEARCH FOWNER FSETID KILL SETGID SETUID SETPCAP "
        "LINUX_IMMUTABLE NET_BIND_SERVICE NET_BROADCAST NET_ADMIN NET_RAW IPC_LOCK IPC_OWNER "
        "SYS_MODULE SYS_RAWIO SYS_CHROOT SYS_PTRACE SYS_PACCT SYS_ADMIN SYS_BOOT SYS_NICE "
        "SYS_RESOURCE SYS_TIME SYS_TTY_CONFIG MKNOD LEASE AUDIT_WRITE AUDIT_CONTROL SETFCAP "
        "MAC_OVERRIDE MAC_ADMIN SYSLOG WAKE_ALARM BLOCK_SUSPEND AUDIT_READ PERFMON BPF "
        "CHECKPOINT_RESTORE".split()
    )
}

# containerd's default set for unprivileged containers
DEFAULT_CAPABILITIES = (
    "CHOWN DAC_OVERRIDE FSETID FOWNER MKNOD NET_RAW SETGID SETUID SETFCAP SETPCAP "
    "NET_BIND_SERVICE SYS_CHROOT KILL AUDIT_WRITE".split()
)


def _cap(name: str, field: str) -> str:
    n = name.upper().removeprefix("CAP_")
    if n != "ALL" and n not in CAPABILITY_NUMBERS:
        raise CreateContainerError(f"securityContext.capabilities.{field}: unknown {name!r}")
    return n


def capability_set(sec: SecurityConfig) -> list[int]:
    """The capability numbers the container keeps (bounding, and effective for uid 0)."""
    if sec.privileged:
        return sorted(CAPABILITY_NUMBERS.values())
    add = [_cap(c, "add") for c in sec.capabilities.add]
    drop = [_cap(c, "drop") for c in sec.capabilities.drop]
    # containerd's order: "ALL" in add, then "ALL" in drop, then single adds, then single drops
    keep = set(DEFAULT_CAPABILITIES)
    if "ALL" in add:
        keep = set(CAPABILITY_NUMBERS)
    if "ALL" in drop:
        keep = set()
    keep |= {c for c in add if c != "ALL"}
    keep -= set(drop)
    return sorted(CAPABILITY_NUMBERS[c] for c in keep)


def _lookup(path: Path, name: str) -> tuple[int, int] | None:
    try:
        lines = path.read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        parts = line.split(":")
        if len(parts) >= 4 and (parts[0] == name or parts[2] == name):
            return int(parts[2]), int(parts[3]) if parts[3].isdigit() else 0
    return None


def resolve_user(
    sec: SecurityConfig, image_user: str, rootfs: str
) -> tuple[int | None, int | None]:
    """(uid, gid): runAsUser/runAsGroup first, then the image's ``User`` (name or id)."""
    uid, gid = sec.run_as_user, sec.run_as_group
    if uid is None and image_user:
        user, _, group = image_user.partition(":")
        if user.isdigit():
            uid = int(user)
        else:
            found = _lookup(Path(rootfs or "/") / "etc/passwd", user)
            if found is None:
                raise CreateContainerError(f"image user {user!r} is not in the image's /etc/passwd")
            uid = found[0]
            gid = found[1] if gid is None else gid
        if group and gid is None:
            if group.isdigit():
                gid = int(group)
            else:
                g = _lookup(Path(rootfs or "/") / "etc/group", group)
                if g is None:
                    raise CreateContainerError(f"image group {group!r} is not in /etc/group")
                gid = g[0]
    if uid is not None and gid is None:
        found = _lookup(Path(rootfs or "/") / "etc/passwd", str(uid))
        gid = found[1] if found else 0
    return uid, gid
