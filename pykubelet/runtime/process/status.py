"""A container's status, read from its files: the record, the shim's state, the identities of
the shim and the container process, and the exit facts fixed on first sight (OOM)."""

from __future__ import annotations

import contextlib
import dataclasses
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from pykubelet.runtime.cgroups import CgroupLayout, is_oom_killed
from pykubelet.runtime.process import procs
from pykubelet.runtime.process.records import (
    ContainerRecord,
    atomic_write_json,
    read_json,
    read_shim_state,
)
from pykubelet.runtime.types import ContainerState, ContainerStatus

__all__ = ["StatusCache", "container_status", "finalize", "identities"]

Ident = procs.ProcessIdentity | None


def identities(d: Path) -> tuple[Ident, Ident]:
    """(shim, container process): pids and start times as the shim recorded them in its state
    (or, for containers started by an earlier agent, in ``started.json``)."""
    state = read_shim_state(d / "shim" / "state")
    if state is not None and state.shim_start:
        return (
            (state.shim_pid, state.shim_start),
            (state.pid, state.pid_start) if state.pid_start else None,
        )
    try:
        started = read_json(d / "started.json")
    except (FileNotFoundError, ValueError):
        return None, None
    shim, pid = started.get("shim"), started.get("pid")
    return (
        (int(shim[0]), int(shim[1])) if shim else None,
        (int(pid[0]), int(pid[1])) if pid else None,
    )


def finalize(d: Path, cgroups: CgroupLayout, rec: ContainerRecord) -> dict[str, object] | None:
    """Fix the exit facts (OOM) the first time the exit is seen, while the cgroup exists."""
    with contextlib.suppress(FileNotFoundError, ValueError):
        return dict(read_json(d / "final.json"))
    state = read_shim_state(d / "shim" / "state")
    if state is None or state.exit_code is None:
        return None
    final: dict[str, object] = {
        "oom": bool(rec.cgroup_path) and is_oom_killed(cgroups, rec.cgroup_path)
    }
    with contextlib.suppress(FileNotFoundError):
        atomic_write_json(d / "final.json", final)
    return final


def container_status(d: Path, cgroups: CgroupLayout, rec: ContainerRecord) -> ContainerStatus:
    base = ContainerStatus(
        id=rec.id,
        sandbox_id=rec.sandbox_id,
        name=rec.config.name,
        attempt=rec.config.attempt,
        state=ContainerState.CREATED,
        image=rec.config.image,
        image_ref=rec.image_ref,
        created_at=rec.created_at,
        log_path=rec.log_path,
        cgroup_path=rec.cgroup_path,
        labels=rec.config.labels,
        annotations=rec.config.annotations,
    )
    state = read_shim_state(d / "shim" / "state")
    if state is None:
        return base
    started = dataclasses.replace(base, started_at=state.started_ns / 1e9)
    if state.exit_code is None:
        shim, pid = identities(d)
        if procs.alive(shim):
            return dataclasses.replace(started, state=ContainerState.RUNNING, pid=state.pid)
        if procs.alive(pid):
            return dataclasses.replace(
                started,
                state=ContainerState.UNKNOWN,
                pid=state.pid,
                message="the container's supervisor has gone",
            )
        return dataclasses.replace(
            started,
            state=ContainerState.EXITED,
            exit_code=255,
            reason="Error",
            message="the container and its supervisor disappeared",
        )
    final = finalize(d, cgroups, rec) or {}
    code = state.exit_code
    message = ""
    if state.exec_errno:
        message = f"cannot exec {rec.argv[0]!r}: {os.strerror(state.exec_errno)}"
    return dataclasses.replace(
        started,
        state=ContainerState.EXITED,
        finished_at=state.finished_ns / 1e9,
        exit_code=code,
        reason="OOMKilled" if final.get("oom") else ("Completed" if code == 0 else "Error"),
        message=message,
    )


_StateKey = tuple[int, int, int] | None


def _state_key(d: Path) -> _StateKey:
    try:
        st = os.stat(d / "shim" / "state")
    except (FileNotFoundError, NotADirectoryError):
        return None
    return (st.st_ino, st.st_mtime_ns, st.st_size)


@dataclass(frozen=True, slots=True, kw_only=True)
class _Entry:
    key: _StateKey
    status: ContainerStatus
    shim: Ident


class StatusCache:
    """Statuses computed from the files, reused while nothing they depend on has changed.

    The shim rewrites its state file when the container exits, so the file's identity (inode,
    mtime, size) says whether the exit facts changed; a running container is also checked for
    its shim still being alive (one read of /proc), since a killed shim writes nothing.
    """

    def __init__(self, cgroups: Callable[[], CgroupLayout], live: procs.Liveness) -> None:
        self._cgroups = cgroups
        self._live = live
        self._entries: dict[str, _Entry] = {}

    def status(self, d: Path, rec: ContainerRecord) -> ContainerStatus:
        key = _state_key(d)
        entry = self._entries.get(rec.id)
        if entry is not None and entry.key == key:
            state = entry.status.state
            if state in (ContainerState.CREATED, ContainerState.EXITED):
                return entry.status  # only exits the shim recorded are cached (see below)
            if state is ContainerState.RUNNING and self._live.alive(entry.shim):
                return entry.status
        status = container_status(d, self._cgroups(), rec)
        shim = identities(d)[0] if status.state is ContainerState.RUNNING else None
        # cache only what the files fixed: a status inferred from missing processes (UNKNOWN,
        # or an exit the shim did not record) is derived afresh every time
        recorded_exit = status.state is ContainerState.EXITED and status.finished_at > 0
        if status.state in (ContainerState.CREATED, ContainerState.RUNNING) or recorded_exit:
            self._entries[rec.id] = _Entry(key=key, status=status, shim=shim)
        else:
            self._entries.pop(rec.id, None)
        return status

    def forget(self, container_id: str) -> None:
        entry = self._entries.pop(container_id, None)
        if entry is not None:
            self._live.forget(entry.shim)
