"""What the runtime keeps on disk so that a new agent can adopt everything.

<root>/runtime/sandboxes/<id>/sandbox.json   SandboxRecord (written once)
<root>/runtime/sandboxes/<id>/stopped        marker: the sandbox was stopped
<root>/runtime/{sandboxes,containers}/<id>/creating  marker (its cgroup): not completely made yet
<root>/runtime/containers/<id>/container.json ContainerRecord (written once)
<root>/runtime/containers/<id>/spec          what `pkshim init` applies in the container
<root>/runtime/containers/<id>/started.json  identities, from agents before the shim recorded them
<root>/runtime/containers/<id>/shim/state    by the shim: pids + start times, exit code, times
<root>/runtime/containers/<id>/shim/attach.sock  the container's stdio while it runs
<root>/runtime/containers/<id>/final.json    exit facts fixed on first observation (OOM)
<root>/runtime/containers/<id>/{upper,work,merged}  overlay directories
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pykubelet.runtime.types import (
    Capabilities,
    ContainerConfig,
    LinuxResources,
    Mount,
    NamespaceMode,
    PortMapping,
    SandboxConfig,
    SecurityConfig,
)

__all__ = [
    "ContainerRecord",
    "SandboxRecord",
    "ShimState",
    "atomic_write_json",
    "read_json",
    "read_shim_state",
]


def atomic_write_json(path: Path, value: object) -> None:
    """Write ``value`` so that readers see the whole file or none of it.

    No fsync: the records describe processes, which a reboot ends anyway (containerd keeps the
    same kind of state on tmpfs). An agent killed at any point leaves either the old file or the
    new one; a record torn by a power loss is unreadable and ignored. Each fsync cost a worker
    thread ~10 ms during a 110-pod start."""
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}")
    with open(tmp, "w") as f:
        json.dump(value, f)
    os.replace(tmp, path)


def read_json(path: Path) -> Any:
    with open(path) as f:
        return json.load(f)


def _sandbox_config_to(c: SandboxConfig) -> dict[str, Any]:
    return {
        "name": c.name,
        "namespace": c.namespace,
        "uid": c.uid,
        "attempt": c.attempt,
        "hostname": c.hostname,
        "log_directory": c.log_directory,
        "network": c.network.value,
        "pid": c.pid.value,
        "ipc": c.ipc.value,
        "cgroup_parent": c.cgroup_parent,
        "port_mappings": [
            [p.container_port, p.host_port, p.protocol, p.host_ip] for p in c.port_mappings
        ],
        "dns_servers": list(c.dns_servers),
        "labels": dict(c.labels),
        "annotations": dict(c.annotations),
    }


def _sandbox_config_from(d: Mapping[str, Any]) -> SandboxConfig:
    return SandboxConfig(
        name=d["name"],
        namespace=d["namespace"],
        uid=d["uid"],
        attempt=d["attempt"],
        hostname=d["hostname"],
        log_directory=d["log_directory"],
        network=NamespaceMode(d["network"]),
        pid=NamespaceMode(d["pid"]),
        ipc=NamespaceMode(d["ipc"]),
        cgroup_parent=d["cgroup_parent"],
        port_mappings=tuple(
            PortMapping(container_port=a, host_port=b, protocol=c, host_ip=e)
            for a, b, c, e in d["port_mappings"]
        ),
        dns_servers=tuple(d["dns_servers"]),
        labels=d["labels"],
        annotations=d["annotations"],
    )


def _container_config_to(c: ContainerConfig) -> dict[str, Any]:
    s, r = c.security, c.resources
    return {
        "name": c.name,
        "attempt": c.attempt,
        "image": c.image,
        "command": list(c.command),
        "args": list(c.args),
        "working_dir": c.working_dir,
        "envs": [list(e) for e in c.envs],
        "mounts": [[m.container_path, m.host_path, m.readonly] for m in c.mounts],
        "log_path": c.log_path,
        "stdin": c.stdin,
        "stdin_once": c.stdin_once,
        "tty": c.tty,
        "resources": [
            r.cpu_period_us,
            r.cpu_quota_us,
            r.cpu_shares,
            r.memory_limit_bytes,
            r.pids_limit,
        ],
        "security": {
            "run_as_user": s.run_as_user,
            "run_as_group": s.run_as_group,
            "supplemental_groups": list(s.supplemental_groups),
            "readonly_rootfs": s.readonly_rootfs,
            "no_new_privs": s.no_new_privs,
            "privileged": s.privileged,
            "add": list(s.capabilities.add),
            "drop": list(s.capabilities.drop),
        },
        "labels": dict(c.labels),
        "annotations": dict(c.annotations),
    }


def _container_config_from(d: Mapping[str, Any]) -> ContainerConfig:
    s = d["security"]
    period, quota, shares, mem, pids = d["resources"]
    return ContainerConfig(
        name=d["name"],
        attempt=d["attempt"],
        image=d["image"],
        command=tuple(d["command"]),
        args=tuple(d["args"]),
        working_dir=d["working_dir"],
        envs=tuple((k, v) for k, v in d["envs"]),
        mounts=tuple(Mount(container_path=a, host_path=b, readonly=c) for a, b, c in d["mounts"]),
        log_path=d["log_path"],
        stdin=d["stdin"],
        stdin_once=d["stdin_once"],
        tty=d["tty"],
        resources=LinuxResources(
            cpu_period_us=period,
            cpu_quota_us=quota,
            cpu_shares=shares,
            memory_limit_bytes=mem,
            pids_limit=pids,
        ),
        security=SecurityConfig(
            run_as_user=s["run_as_user"],
            run_as_group=s["run_as_group"],
            supplemental_groups=tuple(s["supplemental_groups"]),
            readonly_rootfs=s["readonly_rootfs"],
            no_new_privs=s["no_new_privs"],
            privileged=s["privileged"],
            capabilities=Capabilities(add=tuple(s["add"]), drop=tuple(s["drop"])),
        ),
        labels=d["labels"],
        annotations=d["annotations"],
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class SandboxRecord:
    id: str
    config: SandboxConfig
    created_at: float
    holder_pid: int
    holder_start: int
    namespaces: bool  # whether the holder owns namespaces (root) or is a plain process
    cgroup_parent: str
    ips: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "config": _sandbox_config_to(self.config),
            "created_at": self.created_at,
            "holder_pid": self.holder_pid,
            "holder_start": self.holder_start,
            "namespaces": self.namespaces,
            "cgroup_parent": self.cgroup_parent,
            "ips": list(self.ips),
        }

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> SandboxRecord:
        return cls(
            id=d["id"],
            config=_sandbox_config_from(d["config"]),
            created_at=d["created_at"],
            holder_pid=d["holder_pid"],
            holder_start=d["holder_start"],
            namespaces=d["namespaces"],
            cgroup_parent=d["cgroup_parent"],
            ips=tuple(d["ips"]),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class ContainerRecord:
    id: str
    sandbox_id: str
    config: ContainerConfig
    image_ref: str  # the image id the container was created from ("host" for none)
    created_at: float
    log_path: str  # absolute
    cgroup_path: str  # "" without cgroups
    argv: tuple[str, ...]
    env: tuple[tuple[str, str], ...]
    working_dir: str
    uid: int | None = None
    gid: int | None = None
    groups: tuple[int, ...] = field(default_factory=tuple)
    rootfs: bool = False  # runs in an overlay of the image
    namespaces: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "sandbox_id": self.sandbox_id,
            "config": _container_config_to(self.config),
            "image_ref": self.image_ref,
            "created_at": self.created_at,
            "log_path": self.log_path,
            "cgroup_path": self.cgroup_path,
            "argv": list(self.argv),
            "env": [list(e) for e in self.env],
            "working_dir": self.working_dir,
            "uid": self.uid,
            "gid": self.gid,
            "groups": list(self.groups),
            "rootfs": self.rootfs,
            "namespaces": self.namespaces,
        }

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> ContainerRecord:
        return cls(
            id=d["id"],
            sandbox_id=d["sandbox_id"],
            config=_container_config_from(d["config"]),
            image_ref=d["image_ref"],
            created_at=d["created_at"],
            log_path=d["log_path"],
            cgroup_path=d["cgroup_path"],
            argv=tuple(d["argv"]),
            env=tuple((k, v) for k, v in d["env"]),
            working_dir=d["working_dir"],
            uid=d["uid"],
            gid=d["gid"],
            groups=tuple(d["groups"]),
            rootfs=d["rootfs"],
            namespaces=d["namespaces"],
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class ShimState:
    pid: int
    shim_pid: int
    started_ns: int
    exit_code: int | None = None
    signal: int = 0
    finished_ns: int = 0
    exec_errno: int = 0
    pid_start: int = 0  # start times (clock ticks since boot): pid + start names a process
    shim_start: int = 0


def read_shim_state(path: Path) -> ShimState | None:
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None
    kv = dict(line.split("=", 1) for line in text.splitlines() if "=" in line)
    return ShimState(
        pid=int(kv.get("pid", "0")),
        shim_pid=int(kv.get("shim_pid", "0")),
        started_ns=int(kv.get("started_ns", "0")),
        exit_code=int(kv["exit_code"]) if "exit_code" in kv else None,
        signal=int(kv.get("signal", "0")),
        finished_ns=int(kv.get("finished_ns", "0")),
        exec_errno=int(kv.get("exec_errno", "0")),
        pid_start=int(kv.get("pid_start", "0")),
        shim_start=int(kv.get("shim_start", "0")),
    )
