"""The command lines of the runtime's helpers (``pkshim pause`` and ``pkshim run``), built from
records alone: no I/O, so what a pod or container asks of its helper is testable by itself."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from pykubelet.runtime.process.records import ContainerRecord, SandboxRecord
from pykubelet.runtime.types import NamespaceMode, SandboxConfig

__all__ = ["pause_args", "run_args"]


def pause_args(
    config: SandboxConfig, *, namespaces: bool, cgroup_procs: Sequence[str] = ()
) -> list[str]:
    """``pause`` options for the pod's holder: the cgroup files it joins first, then the
    namespaces it owns (none of the host's that the pod shares)."""
    args = ["pause"]
    for procs_file in cgroup_procs:
        args += ["-C", procs_file]
    if namespaces:
        if config.network != NamespaceMode.NODE:
            args += ["-n", "-u", config.hostname or config.name]
        if config.ipc != NamespaceMode.NODE:
            args.append("-i")
        if config.pid == NamespaceMode.POD:
            args.append("-p")
    return args


def run_args(
    rec: ContainerRecord,
    sandbox: SandboxRecord,
    container_dir: Path,
    *,
    log_max_size: int,
    log_max_files: int,
    init: Sequence[str] | None,
) -> list[str]:
    """``run`` options for the container's shim. ``init`` is the helper's argv prefix when
    init is exec'd as its own program; None has the shim run it in its child (``-I``)."""
    spec = str(container_dir / "spec")
    args = ["run", "-s", str(container_dir / "shim"), "-l", rec.log_path]
    args += ["-m", str(log_max_size), "-k", str(log_max_files)]
    if sandbox.namespaces:
        holder = sandbox.holder_pid
        c = sandbox.config
        if c.network != NamespaceMode.NODE:
            args += ["-N", f"/proc/{holder}/ns/net", "-N", f"/proc/{holder}/ns/uts"]
        if c.ipc != NamespaceMode.NODE:
            args += ["-N", f"/proc/{holder}/ns/ipc"]
        if c.pid == NamespaceMode.POD:
            args += ["-N", f"/proc/{holder}/ns/pid_for_children"]
        elif c.pid == NamespaceMode.CONTAINER:
            args.append("-P")
    if rec.config.tty:
        args.append("-t")
    if rec.config.stdin:
        args.append("-i")
    if rec.config.stdin_once:
        args.append("-o")
    if init is None:
        return [*args, "-I", spec]
    return [*args, "--", *init, "init", spec]
