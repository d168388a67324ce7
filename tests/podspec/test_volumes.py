"""Volumes on the real file system: hostPath type checks, emptyDir (disk and tmpfs), downward API
files and their atomic updates, subPath, readOnly, and cleanup with the pod."""

from __future__ import annotations

import os
import socket
import stat
from pathlib import Path
from typing import Any

import pytest

from pykubelet.api import Pod
from pykubelet.core.errors import InvalidInput
from pykubelet.pods.spec_errors import VolumeSetupError
from pykubelet.podspec.downward import NodeAllocatable, PodFacts
from pykubelet.podspec.volumes import PodVolumes, check_host_path
from pykubelet.runtime import Mount
from tests.prereq import require_root

ALLOC = NodeAllocatable(cpu_milli=2000, memory_bytes=2**30)


def make_pod(volumes: list[dict[str, Any]], mounts: list[dict[str, Any]] | None = None) -> Pod:
    return Pod.from_dict(
        {
            "metadata": {
                "name": "vol",
                "namespace": "default",
                "uid": "uid-vol",
                "labels": {"a": "1"},
            },
            "spec": {
                "containers": [
                    {"name": "app", "image": "busybox:1.35", "volumeMounts": mounts or []}
                ],
                "volumes": volumes,
            },
        }
    )


def facts(pod: Pod) -> PodFacts:
    return PodFacts.of(pod, node_name="n", host_ip="127.0.0.1", pod_ips=())


def mount_lines() -> list[str]:
    with open("/proc/self/mountinfo") as f:
        return f.readlines()


def symlink(link: str, target: str) -> None:
    Path(link).symlink_to(target)


def write(path: str, data: bytes) -> None:
    Path(path).write_bytes(data)


def _block_device() -> str | None:
    for entry in os.scandir("/dev"):
        try:
            if stat.S_ISBLK(os.stat(entry.path).st_mode):
                return entry.path
        except OSError:
            continue
    return None


def test_host_path_type_checks(tmp_path: Path) -> None:
    d, f = tmp_path / "dir", tmp_path / "file"
    d.mkdir()
    f.write_text("x")
    sock_path = str(tmp_path / "s.sock")
    with socket.socket(socket.AF_UNIX) as s:
        s.bind(sock_path)
        ok = [
            (str(d), "Directory"),
            (str(f), "File"),
            (sock_path, "Socket"),
            ("/dev/null", "CharDevice"),
            (str(f), ""),
            (str(tmp_path / "nothing"), ""),
        ]
        for path, kind in ok:
            check_host_path(path, kind)
        bad = [
            (str(f), "Directory", "is not a directory"),
            (str(tmp_path / "missing"), "Directory", "is not a directory"),
            (str(d), "File", "is not a file"),
            (str(d), "FileOrCreate", "is not a file"),
            (str(f), "DirectoryOrCreate", "is not a directory"),
            (str(f), "Socket", "is not a socket file"),
            (str(f), "CharDevice", "is not a character device"),
            ("/dev/null", "BlockDevice", "is not a block device"),
        ]
        for path, kind, msg in bad:
            with pytest.raises(VolumeSetupError) as info:
                check_host_path(path, kind)
            assert str(info.value) == f"hostPath type check failed: {path} {msg}"
    with pytest.raises(VolumeSetupError, match="Weird is an invalid volume type"):
        check_host_path(str(d), "Weird")
    created_dir = tmp_path / "new" / "deep"
    check_host_path(str(created_dir), "DirectoryOrCreate")
    assert created_dir.is_dir() and stat.S_IMODE(created_dir.stat().st_mode) & 0o755 == 0o755
    created_file = tmp_path / "new.txt"
    check_host_path(str(created_file), "FileOrCreate")
    assert created_file.is_file()
    with pytest.raises(VolumeSetupError):  # FileOrCreate does not create parents, as upstream
        check_host_path(str(tmp_path / "no-parent" / "f"), "FileOrCreate")
    if (blk := _block_device()) is not None:
        check_host_path(blk, "BlockDevice")


async def test_empty_dir_downward_api_sub_path_and_cleanup(tmp_path: Path) -> None:
    host = tmp_path / "host"
    host.mkdir()
    pod = make_pod(
        [
            {"name": "scratch", "emptyDir": {}},
            {"name": "hp", "hostPath": {"path": str(host), "type": "Directory"}},
            {
                "name": "info",
                "downwardAPI": {
                    "items": [
                        {"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}},
                        {"path": "meta/name", "fieldRef": {"fieldPath": "metadata.name"}},
                    ]
                },
            },
            {
                "name": "proj",
                "projected": {
                    "sources": [
                        {
                            "downwardAPI": {
                                "items": [
                                    {"path": "uid", "fieldRef": {"fieldPath": "metadata.uid"}}
                                ]
                            }
                        }
                    ],
                    "defaultMode": 0o400,
                },
            },
        ],
        [
            {"name": "scratch", "mountPath": "/scratch"},
            {"name": "scratch", "mountPath": "/logs", "subPath": "logs/app"},
            {"name": "hp", "mountPath": "/host", "readOnly": True},
            {"name": "info", "mountPath": "/etc/podinfo"},
            {"name": "proj", "mountPath": "/etc/proj"},
        ],
    )
    vols = PodVolumes(str(tmp_path / "pods"))
    prepared = await vols.setup(pod, facts(pod), ALLOC)
    root = tmp_path / "pods" / "uid-vol" / "volumes"
    scratch = root / "kubernetes.io~empty-dir" / "scratch"
    assert prepared["scratch"].host_path == str(scratch)
    assert stat.S_IMODE(scratch.stat().st_mode) == 0o777
    info = root / "kubernetes.io~downward-api" / "info"
    assert (info / "labels").read_text() == 'a="1"'
    assert (info / "meta" / "name").read_text() == "vol"
    assert (info / "..data").is_symlink() and (info / "labels").is_symlink()
    proj = root / "kubernetes.io~projected" / "proj"
    assert (proj / "uid").read_text() == "uid-vol"
    assert stat.S_IMODE((proj / "uid").stat().st_mode) == 0o400

    mounts = vols.container_mounts(pod.spec.containers[0], prepared)
    assert mounts == (
        Mount(container_path="/scratch", host_path=str(scratch)),
        Mount(container_path="/logs", host_path=str(scratch / "logs" / "app")),
        Mount(container_path="/host", host_path=str(host), readonly=True),
        Mount(container_path="/etc/podinfo", host_path=str(info), readonly=True),
        Mount(container_path="/etc/proj", host_path=str(proj), readonly=True),
    )
    assert (scratch / "logs" / "app").is_dir()

    # A label change rewrites the files atomically; the old generation is gone.
    changed = Pod.from_dict({**pod.raw, "metadata": {**pod.raw["metadata"], "labels": {"a": "2"}}})
    await vols.setup(changed, facts(changed), ALLOC)
    assert (info / "labels").read_text() == 'a="2"'
    assert len([p for p in info.iterdir() if p.name.startswith("..20")]) == 1

    await vols.cleanup("uid-vol")
    assert not root.exists()
    assert host.is_dir()  # hostPath contents are never removed
    await vols.cleanup("uid-vol")  # idempotent


async def test_sub_path_cannot_escape_the_volume(tmp_path: Path) -> None:
    pod = make_pod(
        [{"name": "scratch", "emptyDir": {}}],
        [{"name": "scratch", "mountPath": "/x", "subPath": "link"}],
    )
    vols = PodVolumes(str(tmp_path / "pods"))
    prepared = await vols.setup(pod, facts(pod), ALLOC)
    symlink(os.path.join(prepared["scratch"].host_path, "link"), "/etc")
    with pytest.raises(VolumeSetupError, match="outside the volume"):
        vols.container_mounts(pod.spec.containers[0], prepared)
    dotdot = make_pod(
        [{"name": "scratch", "emptyDir": {}}],
        [{"name": "scratch", "mountPath": "/x", "subPath": "../../etc"}],
    )
    with pytest.raises(InvalidInput, match=r"volumeMounts\[0\]\.subPath"):
        vols.container_mounts(dotdot.spec.containers[0], prepared)
    await vols.cleanup("uid-vol")


async def test_unresolvable_and_unknown_volumes_say_why(tmp_path: Path) -> None:
    vols = PodVolumes(str(tmp_path))
    for vol, msg in [
        ({"name": "c", "configMap": {"name": "x"}}, "standalone node"),
        ({"name": "s", "secret": {"secretName": "x"}}, "standalone node"),
        ({"name": "n", "nfs": {"server": "x", "path": "/"}}, "type nfs is not supported"),
        (
            {"name": "p", "projected": {"sources": [{"serviceAccountToken": {"path": "t"}}]}},
            "serviceAccountToken",
        ),
        ({"name": "h", "hostPath": {"path": str(tmp_path / "f"), "type": "File"}}, "not a file"),
    ]:
        pod = make_pod([vol])
        with pytest.raises(VolumeSetupError, match=msg):
            await vols.setup(pod, facts(pod), ALLOC)
    with pytest.raises(InvalidInput, match=r"volumeMounts\[0\]\.name"):
        vols.container_mounts(
            make_pod([], [{"name": "ghost", "mountPath": "/g"}]).spec.containers[0], {}
        )


@pytest.mark.root
async def test_memory_empty_dir_is_a_sized_tmpfs_unmounted_on_cleanup(tmp_path: Path) -> None:
    require_root()
    pod = make_pod([{"name": "mem", "emptyDir": {"medium": "Memory", "sizeLimit": "4Mi"}}])
    vols = PodVolumes(str(tmp_path / "pods"))
    try:
        prepared = await vols.setup(pod, facts(pod), ALLOC)
        path = prepared["mem"].host_path
        st = os.statvfs(path)
        assert st.f_blocks * st.f_frsize == 4 * 2**20
        assert any(line.split()[4] == path and " tmpfs " in line for line in mount_lines())
        with pytest.raises(OSError):  # the size limit holds
            write(os.path.join(path, "big"), b"x" * (5 * 2**20))
        await vols.setup(pod, facts(pod), ALLOC)  # idempotent: not mounted twice
        assert sum(line.split()[4] == path for line in mount_lines()) == 1
    finally:
        await vols.cleanup("uid-vol")
    assert not any(str(tmp_path) in line for line in mount_lines())


async def test_volumes_of_orphaned_pods_are_removed_at_start(tmp_path: Path) -> None:
    from pykubelet.core.clock import FakeClock
    from pykubelet.podspec.container_setup import ContainerSetup
    from pykubelet.runtime.fake import FakeRuntime

    rt = FakeRuntime(FakeClock())
    layer = ContainerSetup(
        images=rt,
        pods_dir=str(tmp_path / "pods"),
        node_name="n",
        host_ip="127.0.0.1",
        allocatable=ALLOC,
    )
    vols = PodVolumes(str(tmp_path / "pods"))
    for uid in ("keep", "gone"):
        pod = Pod.from_dict(
            {
                "metadata": {"name": uid, "uid": uid},
                "spec": {
                    "containers": [{"name": "c", "image": "busybox:1"}],
                    "volumes": [{"name": "v", "emptyDir": {}}],
                },
            }
        )
        await vols.setup(pod, facts(pod), ALLOC)
    assert vols.pod_uids() == ["gone", "keep"]
    assert await layer.cleanup_orphans({"keep"}) == ["gone"]
    assert vols.pod_uids() == ["keep"]
