"""Volumes on the real file system: hostPath type checks, emptyDir (disk and tmpfs), downward API
files and their atomic updates, subPath, readOnly, and cleanup with the pod."""

from __future__ import annotations

import os
import shutil
import socket
import stat
import subprocess
import tempfile
from collections.abc import AsyncIterator
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


@pytest.fixture
async def pod_volumes(tmp_path: Path) -> AsyncIterator[PodVolumes]:
    """``PodVolumes`` under ``tmp_path``, whose pod ``uid-vol`` is cleaned up (its tmpfs mounts
    too) even when the test fails."""
    vols = PodVolumes(str(tmp_path / "pods"))
    try:
        yield vols
    finally:
        await vols.cleanup("uid-vol")


@pytest.mark.root
async def test_empty_dir_downward_api_sub_path_and_cleanup(
    tmp_path: Path, pod_volumes: PodVolumes
) -> None:
    require_root()  # the downward API volumes are tmpfs mounts
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
    vols = pod_volumes
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


def _mount_at(path: str) -> list[list[str]]:
    """mountinfo lines (split) whose mount point is ``path``."""
    return [line.split() for line in mount_lines() if line.split()[4] == path]


def _fstype(fields: list[str]) -> str:
    return fields[fields.index("-") + 1]


@pytest.mark.root
async def test_secret_projected_and_downward_volumes_are_on_a_tmpfs_of_their_own(
    tmp_path: Path,
) -> None:
    """As upstream (a memory emptyDir under each): secret material never reaches the disk; a
    configMap and a disk emptyDir stay plain directories; a refresh rewrites the files on the
    same tmpfs; cleanup unmounts it."""
    require_root()
    from pykubelet.podspec.api_objects import CONFIG_MAP, SECRET, TOKEN, PodObjects

    pod = make_pod(
        [
            {"name": "sec", "secret": {"secretName": "db", "defaultMode": 0o400}},
            {
                "name": "sa",
                "projected": {
                    "sources": [
                        {"serviceAccountToken": {"path": "token"}},
                        {"secret": {"name": "db", "items": [{"key": "pw", "path": "db/pw"}]}},
                    ]
                },
            },
            {
                "name": "info",
                "downwardAPI": {
                    "items": [{"path": "name", "fieldRef": {"fieldPath": "metadata.name"}}]
                },
            },
            {"name": "cfg", "configMap": {"name": "cfg"}},
            {"name": "scratch", "emptyDir": {}},
        ]
    )

    def objects(pw: bytes) -> PodObjects:
        return PodObjects(
            {
                (SECRET, "db"): {"pw": pw},
                (TOKEN, "|3600"): {"token": b"jwt-" + pw},
                (CONFIG_MAP, "cfg"): {"k": b"v"},
            }
        )

    vols = PodVolumes(str(tmp_path / "pods"))
    root = tmp_path / "pods" / "uid-vol" / "volumes"
    sec = root / "kubernetes.io~secret" / "sec"
    sa = root / "kubernetes.io~projected" / "sa"
    info = root / "kubernetes.io~downward-api" / "info"
    try:
        await vols.setup(pod, facts(pod), ALLOC, objects=objects(b"hunter2"))
        for d, name, content in [
            (sec, "pw", b"hunter2"),
            (sa, "token", b"jwt-hunter2"),
            (sa, "db/pw", b"hunter2"),
            (info, "name", b"vol"),
        ]:
            (m,) = _mount_at(str(d))
            assert _fstype(m) == "tmpfs", m
            assert {"nosuid", "nodev"} <= set(m[5].split(",")), m
            assert stat.S_IMODE(d.stat().st_mode) == 0o755
            assert (d / name).read_bytes() == content
            # the file itself is on that mount (mountinfo's major:minor), not on the disk below
            dev = (d / name).stat().st_dev
            assert f"{os.major(dev)}:{os.minor(dev)}" == m[2]
        assert stat.S_IMODE((sec / "pw").stat().st_mode) == 0o400
        cfg = root / "kubernetes.io~configmap" / "cfg"
        assert (cfg / "k").read_bytes() == b"v"
        assert _mount_at(str(cfg)) == [] and _mount_at(str(root / "kubernetes.io~empty-dir")) == []
        assert (cfg / "k").stat().st_dev == root.stat().st_dev  # on the disk

        # A refresh (node/volume_refresh.py → setup again) swaps ..data on the same tmpfs.
        await vols.setup(pod, facts(pod), ALLOC, objects=objects(b"swordfish"))
        assert (sec / "pw").read_bytes() == b"swordfish"
        assert (sa / "token").read_bytes() == b"jwt-swordfish"
        for d in (sec, sa, info):
            assert len(_mount_at(str(d))) == 1  # not mounted twice
            assert len([p for p in d.iterdir() if p.name.startswith("..20")]) == 1
    finally:
        await vols.cleanup("uid-vol")
    assert not any(str(tmp_path) in line for line in mount_lines())
    assert not root.exists()


_UNPRIVILEGED_SETUP = """
import asyncio, sys
from pykubelet.api import Pod
from pykubelet.pods.spec_errors import VolumeSetupError
from pykubelet.podspec.downward import NodeAllocatable, PodFacts
from pykubelet.podspec.volumes import PodVolumes
pod = Pod.from_dict({"metadata": {"name": "p", "uid": "u"}, "spec": {
    "containers": [{"name": "c", "image": "i"}],
    "volumes": [{"name": "info", "downwardAPI": {"items": [
        {"path": "n", "fieldRef": {"fieldPath": "metadata.name"}}]}}]}})
facts = PodFacts.of(pod, node_name="n", host_ip="127.0.0.1", pod_ips=())
alloc = NodeAllocatable(cpu_milli=1000, memory_bytes=2**30)
try:
    asyncio.run(PodVolumes(sys.argv[1]).setup(pod, facts, alloc))
except VolumeSetupError as e:
    print(e.volume, e, sep="|")
"""


@pytest.mark.root
def test_without_the_right_to_mount_the_volume_fails_saying_why(tmp_path: Path) -> None:
    """Not on disk instead (upstream fails the pod too): a FailedMount naming the volume."""
    require_root()
    from tests.unprivileged import NOBODY, as_nobody

    pods = Path(tempfile.mkdtemp(prefix="pykubelet-nomount-"))
    try:
        os.chown(pods, NOBODY, NOBODY)
        with as_nobody(["-c", _UNPRIVILEGED_SETUP, str(pods)]) as (argv, env):
            r = subprocess.run(argv, capture_output=True, text=True, env=env)
        assert r.returncode == 0, r.stderr
        info = pods / "u" / "volumes" / "kubernetes.io~downward-api" / "info"
        assert r.stdout == (
            "info|downwardAPI volume 'info' is kept in memory so its contents never reach the "
            f"disk: mount tmpfs on {info}: Operation not permitted (mounting needs root or "
            "CAP_SYS_ADMIN)\n"
        )
        assert not (info / "n").exists()
    finally:
        shutil.rmtree(pods)
