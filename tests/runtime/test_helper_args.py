"""What a pod and a container ask of their helpers, from the records alone (no processes)."""

from __future__ import annotations

from pathlib import Path
from typing import Unpack

from pykubelet.runtime import ContainerConfig, NamespaceMode, SandboxConfig
from pykubelet.runtime.process.helper_args import pause_args, run_args
from pykubelet.runtime.process.records import ContainerRecord, SandboxRecord
from tests.runtime.conftest import SandboxOptions


def _sandbox(**kw: Unpack[SandboxOptions]) -> SandboxConfig:
    return SandboxConfig(name="web", namespace="default", uid="u1", hostname="web", **kw)


def test_the_holder_joins_its_cgroups_then_owns_the_pods_namespaces() -> None:
    procs = ["/sys/fs/cgroup/memory/p/cgroup.procs", "/sys/fs/cgroup/pids/p/cgroup.procs"]
    assert pause_args(_sandbox(), namespaces=True, cgroup_procs=procs) == [
        "pause",
        *("-C", procs[0], "-C", procs[1]),
        *("-n", "-u", "web", "-i"),
    ]
    shared = _sandbox(pid=NamespaceMode.POD)
    assert pause_args(shared, namespaces=True)[-1] == "-p"


def test_host_namespaces_and_plain_processes_own_nothing() -> None:
    host = _sandbox(network=NamespaceMode.NODE, ipc=NamespaceMode.NODE)
    assert pause_args(host, namespaces=True) == ["pause"]  # no -u: the host's hostname stays
    assert pause_args(_sandbox(), namespaces=False) == ["pause"]


def _records(
    tmp: Path, **sandbox_kw: Unpack[SandboxOptions]
) -> tuple[ContainerRecord, SandboxRecord]:
    sb = SandboxRecord(
        id="s" * 64,
        config=_sandbox(**sandbox_kw),
        created_at=0.0,
        holder_pid=4242,
        holder_start=1,
        namespaces=True,
        cgroup_parent="",
    )
    rec = ContainerRecord(
        id="c" * 64,
        sandbox_id=sb.id,
        config=ContainerConfig(name="c", image="busybox", tty=True, stdin=True),
        image_ref="sha256:x",
        created_at=0.0,
        log_path=str(tmp / "c" / "0.log"),
        cgroup_path="",
        argv=("sh",),
        env=(),
        working_dir="/",
    )
    return rec, sb


def test_the_shim_joins_the_holders_namespaces_and_runs_init_in_its_child(tmp_path: Path) -> None:
    rec, sb = _records(tmp_path, pid=NamespaceMode.POD)
    d = tmp_path / "ctr"
    args = run_args(rec, sb, d, log_max_size=10, log_max_files=2, init=None)
    assert args[:9] == ["run", "-s", str(d / "shim"), "-l", rec.log_path, "-m", "10", "-k", "2"]
    for ns in ("net", "uts", "ipc", "pid_for_children"):
        assert f"/proc/4242/ns/{ns}" in args
    assert "-P" not in args  # the pod's PID namespace, not one of its own
    assert args[-4:] == ["-t", "-i", "-I", str(d / "spec")]


def test_without_the_zygote_init_is_execd_as_its_own_program(tmp_path: Path) -> None:
    rec, sb = _records(tmp_path, network=NamespaceMode.NODE)
    d = tmp_path / "ctr"
    args = run_args(rec, sb, d, log_max_size=10, log_max_files=2, init=["python", "pyshim.py"])
    assert "/proc/4242/ns/net" not in args and "/proc/4242/ns/ipc" in args
    assert "-P" in args  # a PID namespace of the container's own (the default)
    assert args[-5:] == ["--", "python", "pyshim.py", "init", str(d / "spec")]
