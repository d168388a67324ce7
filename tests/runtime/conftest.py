"""Fixtures for runtime tests: a ProcessRuntime on a private root with a unique cgroup root,
torn down (containers, holders, cgroups) even when the test fails."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import TypedDict, Unpack

import pytest

from devtools.busybox_image import BUSYBOX_PATH, build_busybox_image, build_pause_image
from devtools.containerd import PAUSE_REF, Containerd
from pykubelet.runtime import (
    ContainerState,
    LinuxResources,
    Mount,
    NamespaceMode,
    PortMapping,
    SandboxConfig,
    SecurityConfig,
)
from pykubelet.runtime.cri import CriRuntime
from pykubelet.runtime.process import ProcessRuntime
from tests.prereq import require, require_binary, require_root

BUSYBOX_REF = "localhost/busybox:latest"


class SandboxOptions(TypedDict, total=False):
    """The ``SandboxConfig`` fields a test's sandbox helper passes through as keywords (its
    identity and hostname the helper sets itself)."""

    attempt: int
    log_directory: str
    network: NamespaceMode
    pid: NamespaceMode
    ipc: NamespaceMode
    cgroup_parent: str
    pids_limit: int
    port_mappings: tuple[PortMapping, ...]
    dns_servers: tuple[str, ...]
    labels: dict[str, str]
    annotations: dict[str, str]


class ContainerOptions(TypedDict, total=False):
    """The ``ContainerConfig`` fields a test's config helper passes through as keywords."""

    attempt: int
    args: tuple[str, ...]
    working_dir: str
    envs: tuple[tuple[str, str], ...]
    mounts: tuple[Mount, ...]
    stdin: bool
    stdin_once: bool
    tty: bool
    resources: LinuxResources
    security: SecurityConfig
    labels: dict[str, str]
    annotations: dict[str, str]


@pytest.fixture(scope="session")
def busybox_tar(tmp_path_factory: pytest.TempPathFactory) -> Path:
    require(BUSYBOX_PATH.is_file(), "needs Debian's busybox-static (/bin/busybox)")
    return build_busybox_image(tmp_path_factory.mktemp("img") / "busybox.tar", BUSYBOX_REF)


async def cleanup(rt: ProcessRuntime) -> None:
    for s in await rt.list_pod_sandboxes():
        await rt.remove_pod_sandbox(s.id)
    for c in await rt.list_containers():
        await rt.remove_container(c.id)


@pytest.fixture
async def make_runtime(tmp_path: Path) -> AsyncIterator[Callable[..., ProcessRuntime]]:
    made: list[ProcessRuntime] = []
    token = secrets.token_hex(4)

    def make(root: Path | None = None, **kw: object) -> ProcessRuntime:
        kw.setdefault("cgroup_root", f"pykubelet-test-{token}")
        rt = ProcessRuntime(root or tmp_path / "root", **kw)  # type: ignore[arg-type]
        made.append(rt)
        return rt

    try:
        yield make
    finally:
        for rt in made:
            await cleanup(rt)
            rt.close()
        if made:
            for d in made[0].cgroups.dirs(f"pykubelet-test-{token}"):
                if d.exists():
                    _rmdir_tree(d)


def _rmdir_tree(d: Path) -> None:
    for sub in sorted((p for p in d.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)):
        with contextlib.suppress(OSError):
            sub.rmdir()
    with contextlib.suppress(OSError):
        d.rmdir()


@pytest.fixture
async def runtime(make_runtime: Callable[..., ProcessRuntime]) -> ProcessRuntime:
    return make_runtime()


def sandbox_config(name: str = "pod", **kw: Unpack[SandboxOptions]) -> SandboxConfig:
    uid = secrets.token_hex(8)
    return SandboxConfig(name=name, namespace="default", uid=uid, hostname=name, **kw)


async def wait_for(
    check: Callable[[], Awaitable[bool] | bool], timeout_s: float = 10.0, what: str = "condition"
) -> None:
    """Poll ``check`` until true; fail after ``timeout_s`` (files and /proc have no events)."""
    try:
        async with asyncio.timeout(timeout_s):
            while True:
                ok = check()
                if not isinstance(ok, bool):
                    ok = await ok
                if ok:
                    return
                await asyncio.sleep(0.02)
    except TimeoutError:
        pytest.fail(f"timed out after {timeout_s}s waiting for {what}")


def read_log(path: Path | str) -> str:
    return Path(path).read_text() if Path(path).exists() else ""


async def wait_state(
    rt: ProcessRuntime | CriRuntime, cid: str, state: ContainerState, timeout_s: float = 10.0
) -> None:
    async def check() -> bool:
        return (await rt.container_status(cid)).state == state

    await wait_for(check, timeout_s, f"{cid[:12]} {state}")


@pytest.fixture
def containerd(tmp_path: Path, busybox_tar: Path) -> Iterator[Containerd]:
    """A private containerd with the pause and busybox images; stopped and cleaned after."""
    require_root()
    for prog in ("containerd", "ctr", "runc", "gcc"):
        require_binary(prog)
    c = Containerd(tmp_path / "containerd").start()
    try:
        c.import_image(build_pause_image(tmp_path / "pause.tar", PAUSE_REF))
        c.import_image(busybox_tar)
        yield c
    finally:
        c.stop()


@pytest.fixture
async def make_cri_runtime(containerd: Containerd) -> AsyncIterator[Callable[..., CriRuntime]]:
    """``CriRuntime``s on the private containerd; every sandbox is removed afterwards."""
    made: list[CriRuntime] = []

    def make(**kw: object) -> CriRuntime:
        rt = CriRuntime(f"unix://{containerd.socket}", **kw)  # type: ignore[arg-type]
        made.append(rt)
        return rt

    try:
        yield make
    finally:
        for rt in made:
            await remove_all_pods(rt)


async def remove_all_pods(rt: CriRuntime) -> None:
    """What a test left on containerd goes before the daemon stops; then the connection."""
    with contextlib.suppress(Exception):
        for sb in await rt.list_pod_sandboxes():
            await rt.stop_pod_sandbox(sb.id)
            await rt.remove_pod_sandbox(sb.id)
    await rt.aclose()
