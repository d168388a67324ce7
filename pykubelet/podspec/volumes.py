"""Pod volumes on the node: prepared under the pod's directory, mounted into containers, removed
with the pod.

Layout, as the kubelet's: ``<pods_dir>/<uid>/volumes/kubernetes.io~<plugin>/<name>``.
``emptyDir`` is a directory (mode 0777) or, with ``medium: Memory``, a tmpfs sized by
``sizeLimit``; ``hostPath`` is checked against its ``type`` with upstream's messages (and created
for the ``…OrCreate`` types); ``downwardAPI``, ``projected`` and ``secret`` volumes live on a
tmpfs of their own, as upstream's (which wraps them in a memory ``emptyDir``), so secret material
never reaches the node's disk; they and ``configMap`` volumes (on disk, as upstream) are written
atomically through a ``..data`` symlink so updates are never seen half-done. ``container_mounts``
turns ``volumeMounts`` (``readOnly``, ``subPath``) into ``runtime.Mount`` values. Sources a
standalone node cannot resolve (ConfigMaps, Secrets, tokens, claims) raise ``VolumeSetupError``
saying so. Blocking file-system work runs in the default executor.
"""

from __future__ import annotations

import asyncio
import ctypes
import errno
import os
import re
import shutil
import stat
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pykubelet.api import Container, Pod
from pykubelet.api.quantity import parse_quantity
from pykubelet.core.errors import InvalidInput
from pykubelet.pods.spec_errors import UnsupportedByRuntime, VolumeSetupError
from pykubelet.podspec.api_objects import (
    CONFIG_MAP,
    SECRET,
    PodObjects,
    token_file,
    volume_files,
)
from pykubelet.podspec.downward import DownwardFile, NodeAllocatable, PodFacts, downward_files
from pykubelet.runtime import Mount

__all__ = ["HOST_PATH_TYPES", "PodVolumes", "PreparedVolume", "check_host_path"]

HOST_PATH_TYPES = (
    "",
    "DirectoryOrCreate",
    "Directory",
    "FileOrCreate",
    "File",
    "Socket",
    "CharDevice",
    "BlockDevice",
)
_STANDALONE = "a standalone node has no API server to resolve it"
_UNRESOLVABLE = ("configMap", "secret", "persistentVolumeClaim", "serviceAccountToken")

_ESCAPED = re.compile(r"\\([0-7]{3})")

_libc = ctypes.CDLL(None, use_errno=True)
_MS_NOSUID, _MS_NODEV = 0x2, 0x4
_MNT_DETACH = 0x2


@dataclass(frozen=True, slots=True, kw_only=True)
class PreparedVolume:
    name: str
    host_path: str
    read_only: bool = False  # forced for downwardAPI/projected, as upstream
    kind: str = ""


def check_host_path(path: str, path_type: str) -> None:
    """Upstream's hostPath ``type`` check; creates the path for the ``…OrCreate`` types."""
    p = Path(path)
    if path_type == "":
        return
    if path_type not in HOST_PATH_TYPES:
        raise VolumeSetupError(f"{path_type} is an invalid volume type")
    try:
        st: os.stat_result | None = os.stat(path)
    except FileNotFoundError:
        st = None
    if path_type == "DirectoryOrCreate" and st is None:
        p.mkdir(mode=0o755, parents=True, exist_ok=True)
        return
    if path_type == "FileOrCreate" and st is None:
        try:
            fd = os.open(path, os.O_CREAT | os.O_WRONLY, 0o644)
        except OSError as e:
            raise VolumeSetupError(f"hostPath {path}: {e.strerror}") from e
        os.close(fd)
        return
    mode = st.st_mode if st is not None else 0
    checks = {
        "DirectoryOrCreate": (stat.S_ISDIR, "is not a directory"),
        "Directory": (stat.S_ISDIR, "is not a directory"),
        "FileOrCreate": (lambda m: not stat.S_ISDIR(m), "is not a file"),
        "File": (lambda m: not stat.S_ISDIR(m), "is not a file"),
        "Socket": (stat.S_ISSOCK, "is not a socket file"),
        "CharDevice": (stat.S_ISCHR, "is not a character device"),
        "BlockDevice": (stat.S_ISBLK, "is not a block device"),
    }
    ok, what = checks[path_type]
    if st is None or not ok(mode):
        raise VolumeSetupError(f"hostPath type check failed: {path} {what}")


def _mount_points() -> list[str]:
    """Mount points of this mount namespace, with mountinfo's octal escapes (``\\040``) undone."""
    with open("/proc/self/mountinfo") as f:
        fields = [line.split() for line in f]
    return [_ESCAPED.sub(lambda m: chr(int(m[1], 8)), f[4]) for f in fields if len(f) > 4]


def _mount_tmpfs(target: str, size_bytes: int, mode: int = 0o777) -> None:
    if os.path.realpath(target) in _mount_points():
        return  # the agent restarted, or a refresh: the pod's memory volume is still there
    data = f"mode={mode:o}" + (f",size={size_bytes}" if size_bytes else "")
    rc = _libc.mount(
        b"tmpfs", target.encode(), b"tmpfs", ctypes.c_ulong(_MS_NOSUID | _MS_NODEV), data.encode()
    )
    if rc != 0:
        err = ctypes.get_errno()
        hint = " (mounting needs root or CAP_SYS_ADMIN)" if err == errno.EPERM else ""
        raise VolumeSetupError(f"mount tmpfs on {target}: {os.strerror(err)}{hint}")


def _memory_backed(d: Path, name: str, kind: str) -> None:
    """The tmpfs under a secret, projected or downward API volume. Only the agent writes there
    (containers get it read-only): mode 0755, unsized like upstream's (the contents are bounded
    by the API objects). Without the right to mount, the volume fails as upstream's does,
    rather than putting secrets on disk."""
    d.mkdir(parents=True, exist_ok=True)
    try:
        _mount_tmpfs(str(d), 0, 0o755)
    except VolumeSetupError as e:
        raise VolumeSetupError(
            f"{kind} volume {name!r} is kept in memory so its contents never reach the disk: {e}",
            volume=name,
        ) from None


def _umount_all_under(root: str) -> None:
    for target in sorted((t for t in _mount_points() if t.startswith(root + "/")), reverse=True):
        if _libc.umount2(target.encode(), _MNT_DETACH) != 0:
            err = ctypes.get_errno()
            raise VolumeSetupError(f"umount {target}: {os.strerror(err)}")


def _write_atomic(
    root: Path, files: Sequence[DownwardFile], default_mode: int, gid: int | None
) -> None:
    """Kubelet's atomic writer: a fresh ``..<stamp>`` dir, ``..data`` swapped by rename, and one
    top-level symlink per entry pointing through ``..data`` (the links of entries no longer in
    the payload are removed)."""
    root.mkdir(parents=True, exist_ok=True)
    stamp = root / f"..{time.strftime('%Y_%m_%d_%H_%M_%S')}.{time.monotonic_ns()}"
    stamp.mkdir()
    for f in files:
        target = stamp / f.path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(f.content)
        os.chmod(target, f.mode if f.mode is not None else default_mode)
        if gid is not None:
            os.chown(target, -1, gid)
    os.chmod(stamp, 0o755)
    tmp_link = root / "..data_tmp"
    tmp_link.unlink(missing_ok=True)
    tmp_link.symlink_to(stamp.name)
    old = os.readlink(root / "..data") if (root / "..data").is_symlink() else None
    os.replace(tmp_link, root / "..data")
    tops = {f.path.split("/", 1)[0] for f in files}
    for top in tops:
        link = root / top
        if not link.is_symlink():
            link.symlink_to(f"..data/{top}")
    for entry in root.iterdir():  # a key the new payload lacks goes, as upstream's writer
        if entry.is_symlink() and not entry.name.startswith("..") and entry.name not in tops:
            entry.unlink()
    if old and old != stamp.name:
        shutil.rmtree(root / old, ignore_errors=True)


class PodVolumes:
    """Prepares and removes the volumes of pods under ``pods_dir``."""

    def __init__(self, pods_dir: str) -> None:
        self._pods_dir = Path(pods_dir)

    def pod_dir(self, uid: str) -> Path:
        if not uid or "/" in uid or uid.startswith("."):
            raise InvalidInput(f"invalid pod uid {uid!r}", field="metadata.uid")
        return self._pods_dir / uid

    async def setup(
        self,
        pod: Pod,
        facts: PodFacts,
        allocatable: NodeAllocatable,
        *,
        fs_group: int | None = None,
        objects: PodObjects | None = None,
    ) -> dict[str, PreparedVolume]:
        """Prepare every volume of ``pod`` (idempotent; rewrites downward API contents).
        ``objects``: the ConfigMaps and Secrets it references (node mode), else None."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(
            None, self._setup_sync, pod, facts, allocatable, fs_group, objects
        )

    def _setup_sync(
        self,
        pod: Pod,
        facts: PodFacts,
        allocatable: NodeAllocatable,
        fs_group: int | None,
        objects: PodObjects | None = None,
    ) -> dict[str, PreparedVolume]:
        out: dict[str, PreparedVolume] = {}
        base = self.pod_dir(pod.meta.uid) / "volumes"
        for i, raw in enumerate(pod.spec.volumes):
            where = f"spec.volumes[{i}]"
            vol: Mapping[str, Any] = raw if isinstance(raw, Mapping) else {}
            name = vol.get("name")
            if not isinstance(name, str) or not name or "/" in name or name.startswith("."):
                raise InvalidInput("Required value: a volume name", field=f"{where}.name")
            if name in out:
                raise InvalidInput(f"Duplicate value: {name!r}", field=f"{where}.name")
            try:
                out[name] = self._one(
                    pod, name, vol, base, where, facts, allocatable, fs_group, objects
                )
            except OSError as e:
                raise VolumeSetupError(f"volume {name!r}: {e}", volume=name) from e
        return out

    def _one(
        self,
        pod: Pod,
        name: str,
        vol: Mapping[str, Any],
        base: Path,
        where: str,
        facts: PodFacts,
        allocatable: NodeAllocatable,
        fs_group: int | None,
        objects: PodObjects | None = None,
    ) -> PreparedVolume:
        if "emptyDir" in vol:
            spec = vol["emptyDir"] or {}
            d = base / "kubernetes.io~empty-dir" / name
            d.mkdir(parents=True, exist_ok=True)
            medium = spec.get("medium") or ""
            if medium == "Memory":
                limit = spec.get("sizeLimit")
                size = (
                    parse_quantity(limit, field=f"{where}.emptyDir.sizeLimit").value()
                    if limit
                    else 0
                )
                _mount_tmpfs(str(d), size)
            elif medium:
                raise UnsupportedByRuntime(
                    f"emptyDir medium {medium!r} is not supported", field=f"{where}.emptyDir.medium"
                )
            os.chmod(d, 0o777 if fs_group is None else 0o2777)
            if fs_group is not None:
                os.chown(d, -1, fs_group)
            return PreparedVolume(name=name, host_path=str(d), kind="emptyDir")
        if "hostPath" in vol:
            spec = vol["hostPath"] or {}
            path = spec.get("path")
            if not isinstance(path, str) or not path.startswith("/"):
                raise InvalidInput("must be an absolute path", field=f"{where}.hostPath.path")
            if ".." in path.split("/"):
                raise InvalidInput("must not contain '..'", field=f"{where}.hostPath.path")
            try:
                check_host_path(path, str(spec.get("type") or ""))
            except VolumeSetupError as e:
                raise VolumeSetupError(str(e), volume=name) from None
            return PreparedVolume(name=name, host_path=path, kind="hostPath")
        if "downwardAPI" in vol or "projected" in vol:
            kind = "downwardAPI" if "downwardAPI" in vol else "projected"
            spec = vol[kind] or {}
            default_mode = spec.get("defaultMode", 0o644)
            if not isinstance(default_mode, int) or not 0 <= default_mode <= 0o777:
                raise InvalidInput(
                    "must be between 0 and 0777", field=f"{where}.{kind}.defaultMode"
                )
            files = self._downward_sources(pod, kind, spec, where, facts, allocatable, objects)
            plugin = (
                "kubernetes.io~downward-api" if kind == "downwardAPI" else "kubernetes.io~projected"
            )
            d = base / plugin / name
            _memory_backed(d, name, kind)
            _write_atomic(d, files, default_mode, fs_group)
            return PreparedVolume(name=name, host_path=str(d), read_only=True, kind=kind)
        if objects is not None and ("configMap" in vol or "secret" in vol):
            kind = "configMap" if "configMap" in vol else "secret"
            spec = vol[kind] or {}
            default_mode = spec.get("defaultMode", 0o644)
            if not isinstance(default_mode, int) or not 0 <= default_mode <= 0o777:
                raise InvalidInput(
                    "must be between 0 and 0777", field=f"{where}.{kind}.defaultMode"
                )
            files = volume_files(objects, CONFIG_MAP if kind == "configMap" else SECRET, spec, name)
            d = base / f"kubernetes.io~{kind.lower()}" / name
            if kind == "secret":  # a configMap stays on disk, as upstream's
                _memory_backed(d, name, kind)
            _write_atomic(d, files, default_mode, fs_group)
            return PreparedVolume(name=name, host_path=str(d), read_only=True, kind=kind)
        for kind in _UNRESOLVABLE:
            if kind in vol:
                raise VolumeSetupError(f"{kind} volume {name!r}: {_STANDALONE}", volume=name)
        other = [k for k in vol if k != "name"]
        raise VolumeSetupError(
            f"volume {name!r} of type {other[0] if other else 'unknown'} is not supported "
            "by pykubelet",
            volume=name,
        )

    def _downward_sources(
        self,
        pod: Pod,
        kind: str,
        spec: Mapping[str, Any],
        where: str,
        facts: PodFacts,
        allocatable: NodeAllocatable,
        objects: PodObjects | None = None,
    ) -> tuple[DownwardFile, ...]:
        containers = pod.spec.all_containers()
        if kind == "downwardAPI":
            return downward_files(
                spec.get("items") or [],
                facts,
                containers,
                allocatable,
                where=f"{where}.downwardAPI",
            )
        files: list[DownwardFile] = []
        for j, source in enumerate(spec.get("sources") or []):
            at = f"{where}.projected.sources[{j}]"
            if isinstance(source, Mapping) and "downwardAPI" in source:
                files.extend(
                    downward_files(
                        (source["downwardAPI"] or {}).get("items") or [],
                        facts,
                        containers,
                        allocatable,
                        where=f"{at}.downwardAPI",
                    )
                )
                continue
            if objects is not None and isinstance(source, Mapping):
                if "serviceAccountToken" in source:
                    files.append(token_file(objects, source["serviceAccountToken"] or {}, where))
                    continue
                kind = "configMap" if "configMap" in source else "secret"
                if kind in source:
                    kind_name = CONFIG_MAP if kind == "configMap" else SECRET
                    files.extend(volume_files(objects, kind_name, source[kind] or {}, where))
                    continue
            what = next(iter(source), "unknown") if isinstance(source, Mapping) else "unknown"
            raise VolumeSetupError(f"projected source {what} ({at}): {_STANDALONE}")
        return tuple(files)

    def container_mounts(
        self, container: Container, volumes: Mapping[str, PreparedVolume], *, where: str = ""
    ) -> tuple[Mount, ...]:
        """``volumeMounts`` → runtime mounts; creates missing ``subPath`` directories."""
        at_base = where or f"container {container.name!r}"
        mounts: list[Mount] = []
        for i, raw in enumerate(container.volume_mounts):
            at = f"{at_base}.volumeMounts[{i}]"
            vm: Mapping[str, Any] = raw if isinstance(raw, Mapping) else {}
            name, mount_path = vm.get("name"), vm.get("mountPath")
            if not isinstance(name, str) or name not in volumes:
                raise InvalidInput(f"Not found: {name!r}", field=f"{at}.name")
            if not isinstance(mount_path, str) or not mount_path.startswith("/"):
                raise InvalidInput("must be an absolute path", field=f"{at}.mountPath")
            vol = volumes[name]
            host = vol.host_path
            sub = vm.get("subPath") or ""
            if sub:
                host = self._sub_path(vol, sub, f"{at}.subPath")
            mounts.append(
                Mount(
                    container_path=mount_path,
                    host_path=host,
                    readonly=bool(vm.get("readOnly")) or vol.read_only,
                )
            )
        return tuple(mounts)

    @staticmethod
    def _sub_path(vol: PreparedVolume, sub: object, where: str) -> str:
        if not isinstance(sub, str) or sub.startswith("/") or ".." in sub.split("/"):
            raise InvalidInput("must be a relative path without '..'", field=where)
        root = os.path.realpath(vol.host_path)
        host = os.path.join(vol.host_path, sub)
        if not os.path.lexists(host):
            os.makedirs(host, mode=0o755 if vol.kind == "hostPath" else 0o777, exist_ok=True)
        real = os.path.realpath(host)
        if real != root and not real.startswith(root + os.sep):
            raise VolumeSetupError(
                f"subPath {sub!r} resolves outside the volume {vol.name!r}", volume=vol.name
            )
        return real

    def pod_uids(self) -> list[str]:
        """Pods that have a directory here (for removing the volumes of orphans at start-up)."""
        if not self._pods_dir.is_dir():
            return []
        return sorted(p.name for p in self._pods_dir.iterdir() if p.is_dir())

    async def cleanup(self, uid: str) -> None:
        """Unmount and remove every volume of the pod (idempotent)."""
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, self._cleanup_sync, uid)

    def _cleanup_sync(self, uid: str) -> None:
        pod = self.pod_dir(uid)
        d = pod / "volumes"
        if d.exists():
            _umount_all_under(str(d.resolve()))
            shutil.rmtree(d)
        if pod.is_dir() and not any(pod.iterdir()):
            pod.rmdir()
