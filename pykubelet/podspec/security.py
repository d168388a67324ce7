"""Pod and container ``securityContext`` → ``runtime.SecurityConfig``, refusing what cannot hold.

Container fields override the pod's (runAsUser, runAsGroup, runAsNonRoot, seLinuxOptions,
seccompProfile); supplementalGroups, fsGroup and sysctls are pod-only; capabilities, privileged,
readOnlyRootFilesystem, allowPrivilegeEscalation and procMount are container-only. ``runAsNonRoot``
is verified against the effective user, or the image's user, with upstream's messages. Anything the
process runtime cannot enforce (SELinux labels, seccomp filters, unmasked /proc, sysctls) raises
``UnsupportedByRuntime``: refused with the reason, never silently ignored.
"""

from __future__ import annotations

import posixpath
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pykubelet.api import Container, Pod
from pykubelet.pods.spec_errors import ContainerConfigError, UnsupportedByRuntime
from pykubelet.podspec.downward import go_quote
from pykubelet.runtime import Capabilities, SecurityConfig

__all__ = [
    "DEFAULT_CAPABILITIES",
    "EffectiveSecurity",
    "container_security",
    "parse_image_user",
]

# The set a container starts with (containerd's and Docker's default, as upstream documents);
# ``capabilities.add``/``drop`` apply on top, ``drop: [ALL]`` empties it.
DEFAULT_CAPABILITIES: tuple[str, ...] = (
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
)

_ALL_CAPABILITIES = frozenset(
    "CHOWN DAC_OVERRIDE DAC_READ_SEARCH FOWNER FSETID KILL SETGID SETUID SETPCAP LINUX_IMMUTABLE "
    "NET_BIND_SERVICE NET_BROADCAST NET_ADMIN NET_RAW IPC_LOCK IPC_OWNER SYS_MODULE SYS_RAWIO "
    "SYS_CHROOT SYS_PTRACE SYS_PACCT SYS_ADMIN SYS_BOOT SYS_NICE SYS_RESOURCE SYS_TIME "
    "SYS_TTY_CONFIG MKNOD LEASE AUDIT_WRITE AUDIT_CONTROL SETFCAP MAC_OVERRIDE MAC_ADMIN SYSLOG "
    "WAKE_ALARM BLOCK_SUSPEND AUDIT_READ PERFMON BPF CHECKPOINT_RESTORE".split()
)


@dataclass(frozen=True, slots=True, kw_only=True)
class EffectiveSecurity:
    """The runtime's view plus what the volume layer needs (fsGroup ownership)."""

    config: SecurityConfig
    fs_group: int | None = None


def parse_image_user(user: str) -> tuple[int | None, str]:
    """An image's ``User`` (``1000``, ``1000:1000``, ``nobody``) → (numeric uid, user name)."""
    name = user.split(":", 1)[0]
    if not name:
        return None, ""
    if name.isdigit():
        return int(name), ""
    return None, name


def _int(sc: Mapping[str, Any], key: str, where: str) -> int | None:
    value = sc.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ContainerConfigError("must be a non-negative integer", field=f"{where}.{key}")
    return value


def _bool(sc: Mapping[str, Any], key: str, where: str) -> bool | None:
    value = sc.get(key)
    if value is not None and not isinstance(value, bool):
        raise ContainerConfigError("must be a boolean", field=f"{where}.{key}")
    return value


def _cap_name(raw: object, where: str) -> str:
    if not isinstance(raw, str) or not raw:
        raise ContainerConfigError("capability names are strings", field=where)
    name = raw.upper().removeprefix("CAP_")
    if name == "ALL":
        return "ALL"
    if name not in _ALL_CAPABILITIES:
        raise ContainerConfigError(f"unknown capability {raw!r}", field=where)
    return "CAP_" + name


def _seccomp_profile(
    sc: Mapping[str, Any], where: str, supported: bool, profile_root: str
) -> tuple[str, str]:
    """(profile type, Localhost file) asked for (("", "") when none); refuses what the runtime
    cannot apply. A Localhost profile is ``localhostProfile`` under ``profile_root``
    (``<rootDir>/seccomp``), a descending relative path as upstream's validation demands."""
    seccomp = sc.get("seccompProfile")
    if not seccomp:
        return "", ""
    if not isinstance(seccomp, Mapping):
        raise ContainerConfigError("must be an object", field=f"{where}.seccompProfile")
    kind = seccomp.get("type")
    local = seccomp.get("localhostProfile")
    if local is not None and kind != "Localhost":
        raise ContainerConfigError(
            "can only be set when seccomp type is Localhost",
            field=f"{where}.seccompProfile.localhostProfile",
        )
    if kind == "Unconfined":
        return "Unconfined", ""
    if kind not in ("RuntimeDefault", "Localhost"):
        raise ContainerConfigError(
            f"Unsupported value: {kind!r}: supported values: "
            '"Localhost", "RuntimeDefault", "Unconfined"',
            field=f"{where}.seccompProfile.type",
        )
    if not supported:
        raise UnsupportedByRuntime(
            "the process runtime does not install seccomp filters; only type Unconfined is "
            "honoured",
            field=f"{where}.seccompProfile",
        )
    if kind == "RuntimeDefault":
        return "RuntimeDefault", ""
    lf = f"{where}.seccompProfile.localhostProfile"
    if not isinstance(local, str) or not local:
        raise ContainerConfigError("must be set when seccomp type is Localhost", field=lf)
    if local.startswith("/") or ".." in local.split("/"):
        raise ContainerConfigError(
            "must be a relative path below the seccomp profile root, without '..'", field=lf
        )
    return "Localhost", posixpath.join(profile_root, local)


def _refuse_unenforceable(sc: Mapping[str, Any], where: str) -> None:
    if sc.get("seLinuxOptions"):
        raise UnsupportedByRuntime(
            "SELinux labels cannot be applied by the process runtime (no SELinux policy here)",
            field=f"{where}.seLinuxOptions",
        )
    if sc.get("procMount") not in (None, "Default"):
        raise UnsupportedByRuntime(
            "the process runtime cannot unmask /proc", field=f"{where}.procMount"
        )
    if sc.get("sysctls"):
        raise UnsupportedByRuntime(
            "namespaced sysctls are not applied by the process runtime", field=f"{where}.sysctls"
        )


def container_security(
    pod: Pod,
    container: Container,
    *,
    image_user: str = "",
    seccomp: bool = False,
    seccomp_profile_root: str = "/var/lib/kubelet/seccomp",
) -> EffectiveSecurity:
    """The effective security settings of ``container``, or ``ContainerConfigError``.
    ``seccomp``: the runtime applies seccomp profiles (RuntimeFeatures); Localhost profiles
    are files under ``seccomp_profile_root`` (upstream: ``<rootDir>/seccomp``)."""
    psc: Mapping[str, Any] = pod.spec.security_context or {}
    csc: Mapping[str, Any] = container.security_context or {}
    pw, cw = "spec.securityContext", f"container {container.name!r}.securityContext"
    _refuse_unenforceable(psc, pw)
    _refuse_unenforceable(csc, cw)
    # the container's profile wins over the pod's
    profile, profile_file = _seccomp_profile(csc, cw, seccomp, seccomp_profile_root)
    if not profile:
        profile, profile_file = _seccomp_profile(psc, pw, seccomp, seccomp_profile_root)

    run_as_user = _int(csc, "runAsUser", cw)
    if run_as_user is None:
        run_as_user = _int(psc, "runAsUser", pw)
    run_as_group = _int(csc, "runAsGroup", cw)
    if run_as_group is None:
        run_as_group = _int(psc, "runAsGroup", pw)
    non_root = _bool(csc, "runAsNonRoot", cw)
    if non_root is None:
        non_root = _bool(psc, "runAsNonRoot", pw)

    groups_raw = psc.get("supplementalGroups") or []
    if not isinstance(groups_raw, list):
        raise ContainerConfigError("must be a list", field=f"{pw}.supplementalGroups")
    groups: list[int] = []
    for i, g in enumerate(groups_raw):
        if isinstance(g, bool) or not isinstance(g, int) or g < 0:
            raise ContainerConfigError("must be a GID", field=f"{pw}.supplementalGroups[{i}]")
        groups.append(g)
    fs_group = _int(psc, "fsGroup", pw)
    if fs_group is not None and fs_group not in groups:
        groups.append(fs_group)  # upstream adds fsGroup to the supplemental groups

    privileged = bool(_bool(csc, "privileged", cw))
    ape = _bool(csc, "allowPrivilegeEscalation", cw)
    caps_raw = csc.get("capabilities") or {}
    if not isinstance(caps_raw, Mapping):
        raise ContainerConfigError("must be an object", field=f"{cw}.capabilities")
    add = tuple(
        _cap_name(c, f"{cw}.capabilities.add[{i}]") for i, c in enumerate(caps_raw.get("add") or [])
    )
    drop = tuple(
        _cap_name(c, f"{cw}.capabilities.drop[{i}]")
        for i, c in enumerate(caps_raw.get("drop") or [])
    )
    if ape is False and (privileged or "CAP_SYS_ADMIN" in add or "ALL" in add):
        raise ContainerConfigError(
            "cannot set allowPrivilegeEscalation to false and privileged or CAP_SYS_ADMIN",
            field=f"{cw}.allowPrivilegeEscalation",
        )

    if non_root:
        _verify_run_as_non_root(pod, container, run_as_user, image_user)

    config = SecurityConfig(
        run_as_user=run_as_user,
        run_as_group=run_as_group,
        supplemental_groups=tuple(groups),
        readonly_rootfs=bool(_bool(csc, "readOnlyRootFilesystem", cw)),
        no_new_privs=ape is False,
        privileged=privileged,
        capabilities=Capabilities(add=add, drop=drop),
        seccomp=profile,
        seccomp_localhost_ref=profile_file,
    )
    return EffectiveSecurity(config=config, fs_group=fs_group)


def _pod_ref(pod: Pod) -> str:
    """``format.Pod``: ``name_namespace(uid)``."""
    return f"{pod.meta.name}_{pod.meta.namespace}({pod.meta.uid})"


def _verify_run_as_non_root(
    pod: Pod, container: Container, run_as_user: int | None, image_user: str
) -> None:
    """Upstream's ``verifyRunAsNonRoot``, with its messages. An image without a user runs as
    root here (the process runtime's default), so it is refused as root, not waved through."""
    ref = _pod_ref(pod)
    if run_as_user is not None:
        if run_as_user == 0:
            raise ContainerConfigError(
                f"container's runAsUser breaks non-root policy (pod: {go_quote(ref)}, "
                f"container: {container.name})"
            )
        return
    uid, name = parse_image_user(image_user)
    if name:
        raise ContainerConfigError(
            f"container has runAsNonRoot and image has non-numeric user ({name}), cannot verify "
            f"user is non-root (pod: {go_quote(ref)}, container: {container.name})"
        )
    if uid is None or uid == 0:
        raise ContainerConfigError(
            f"container has runAsNonRoot and image will run as root (pod: {go_quote(ref)}, "
            f"container: {container.name})"
        )
