"""CreateContainer for the process runtime: validate the config against what this host can
enforce, resolve image defaults, and write the container's record, init spec and cgroup."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from pykubelet.runtime.cgroups import CgroupLayout
from pykubelet.runtime.errors import CreateContainerError
from pykubelet.runtime.process import halfmade
from pykubelet.runtime.process.etcfiles import etc_mounts
from pykubelet.runtime.process.features import RuntimeCapabilities
from pykubelet.runtime.process.layout import RuntimeLayout
from pykubelet.runtime.process.records import ContainerRecord, SandboxRecord, atomic_write_json
from pykubelet.runtime.process.refs import HOST_IMAGE
from pykubelet.runtime.process.security import capability_set, resolve_user
from pykubelet.runtime.types import ContainerConfig, ImageInfo, NamespaceMode, SandboxConfig

__all__ = [
    "CreateContext",
    "command_line",
    "container_env",
    "prepare_container",
    "write_init_spec",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class CreateContext:
    """What creating a container needs of its runtime (and nothing more): the host's
    capabilities, the on-disk layout, the cgroup tree, and the creation time."""

    capabilities: RuntimeCapabilities
    layout: RuntimeLayout
    cgroups: CgroupLayout
    created_at: float


_DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def command_line(config: ContainerConfig, image: ImageInfo) -> tuple[str, ...]:
    """Kubernetes rules: ``command`` replaces ENTRYPOINT (and drops CMD); ``args`` replace CMD."""
    if config.command:
        argv = config.command + config.args
    else:
        argv = image.config_entrypoint + (config.args or image.config_cmd)
    if not argv:
        raise CreateContainerError(
            f"container {config.name!r}: no command specified and the image has none"
        )
    return argv


def container_env(
    config: ContainerConfig, image: ImageInfo, hostname: str
) -> tuple[tuple[str, str], ...]:
    env: dict[str, str] = {}
    if image.id != HOST_IMAGE:
        env["PATH"] = _DEFAULT_PATH
    else:
        env["PATH"] = os.environ.get("PATH", _DEFAULT_PATH)
    for item in image.config_env:
        k, _, v = item.partition("=")
        env[k] = v
    if hostname:
        env["HOSTNAME"] = hostname
    for k, v in config.envs:
        if not k or "=" in k or "\0" in k or "\0" in v:
            raise CreateContainerError(f"container {config.name!r}: invalid env name {k!r}")
        env[k] = v
    return tuple(env.items())


def _escape(field: str) -> str:
    return field.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n")


def write_init_spec(path: Path, directives: list[tuple[str, ...]]) -> None:
    """The file ``pkshim init`` reads: a directive per line, tab-separated, escaped."""
    for d in directives:
        if any("\0" in f for f in d):
            raise CreateContainerError(f"container spec: NUL byte in {d[0]}")
    text = "".join("\t".join(_escape(f) for f in d) + "\n" for d in directives)
    path.write_text(text)


def _validate(rt: CreateContext, config: ContainerConfig, image: ImageInfo) -> None:
    caps = rt.capabilities
    sec = config.security
    name = config.name
    if not name:
        raise CreateContainerError("container name: required")
    if image.id != HOST_IMAGE and not caps.overlay:
        raise CreateContainerError(
            f"container {name!r}: image {config.image!r} needs overlayfs and root; "
            f"this host runs plain processes (use image 'host')"
        )
    if not caps.user_switch:
        me = os.geteuid()
        if sec.run_as_user not in (None, me) or sec.supplemental_groups or sec.privileged:
            raise CreateContainerError(
                f"container {name!r}: runAsUser/supplementalGroups/privileged need root; "
                f"the runtime runs as uid {me}"
            )
        if sec.capabilities.add:
            raise CreateContainerError(
                f"container {name!r}: capabilities.add needs root; the runtime is not root"
            )
        if sec.readonly_rootfs:
            raise CreateContainerError(
                f"container {name!r}: readOnlyRootFilesystem needs mount namespaces (root)"
            )
        if config.mounts:
            raise CreateContainerError(f"container {name!r}: volume mounts need root")
    for i, m in enumerate(config.mounts):
        if not m.container_path.startswith("/"):
            raise CreateContainerError(
                f"container {name!r}: mounts[{i}].container_path {m.container_path!r} "
                f"must be absolute"
            )
        if ".." in Path(m.container_path).parts:
            raise CreateContainerError(f"container {name!r}: mounts[{i}].container_path has '..'")
        if not os.path.exists(m.host_path):
            raise CreateContainerError(
                f"container {name!r}: mounts[{i}].host_path {m.host_path!r} does not exist"
            )


def prepare_container(
    rt: CreateContext,
    cid: str,
    sandbox: SandboxRecord,
    config: ContainerConfig,
    sandbox_config: SandboxConfig,
    image: ImageInfo,
) -> ContainerRecord:
    """Blocking: run in a thread. Writes everything ``start_container`` needs."""
    _validate(rt, config, image)
    argv = command_line(config, image)
    sc = sandbox.config
    hostname = "" if sc.network == NamespaceMode.NODE else (sc.hostname or sc.name)
    env = container_env(config, image, hostname)
    rootfs = image.rootfs_path if image.id != HOST_IMAGE else ""
    uid, gid = resolve_user(config.security, image.config_user, rootfs)
    if not rt.capabilities.user_switch:
        uid, gid = None, None
    working_dir = config.working_dir or image.config_working_dir or "/"
    if not working_dir.startswith("/"):
        raise CreateContainerError(f"container {config.name!r}: workingDir must be absolute")

    log_dir = (
        sandbox_config.log_directory
        or sc.log_directory
        or str(rt.layout.logs / f"{sc.namespace}_{sc.name}_{sc.uid}")
    )
    log_rel = config.log_path or f"{config.name}/{config.attempt}.log"
    log_path = Path(log_dir) / log_rel
    log_path.parent.mkdir(parents=True, exist_ok=True)

    d = rt.layout.container_dir(cid)
    (d / "shim").mkdir(parents=True)
    cgroup_path = f"{sandbox.cgroup_parent}/{cid}" if sandbox.cgroup_parent else ""
    try:
        halfmade.mark(d, cgroup_path)  # until the record is written
        if cgroup_path:
            try:
                rt.cgroups.create(cgroup_path)
                rt.cgroups.apply(cgroup_path, config.resources)
            except OSError as e:
                raise CreateContainerError(
                    f"container {config.name!r}: cannot apply resource limits: {e}"
                ) from e
        spec: list[tuple[str, ...]] = []
        if cgroup_path:
            spec += [("cgroup", f) for f in rt.cgroups.procs_files(cgroup_path)]
        if sandbox.namespaces:
            spec.append(("mountns",))
            if sc.pid != NamespaceMode.NODE:
                spec.append(("proc",))
        if rootfs:
            for sub in ("upper", "work", "merged"):
                (d / sub).mkdir()
            spec.append(("rootfs", rootfs, str(d / "upper"), str(d / "work"), str(d / "merged")))
            spec.append(("sysfs", "rw" if config.security.privileged else "ro"))
        pod_files = etc_mounts(rt.layout.sandbox_dir(sandbox.id), config.mounts) if rootfs else ()
        for m in (*pod_files, *config.mounts):
            spec.append(("mount", "1" if m.readonly else "0", m.host_path, m.container_path))
        if config.security.readonly_rootfs:
            spec.append(("readonly_rootfs",))
        if rt.capabilities.user_switch:
            mask = sum(1 << c for c in capability_set(config.security))
            spec.append(("caps", f"{mask:x}"))
        if uid is not None:
            groups = ",".join(str(g) for g in config.security.supplemental_groups)
            spec += [("gid", str(gid or 0)), ("groups", groups), ("uid", str(uid))]
        if config.security.no_new_privs:
            spec.append(("nnp",))
        spec.append(("cwd", working_dir))
        spec += [("arg", a) for a in argv]
        write_init_spec(d / "spec", spec)
        rec = ContainerRecord(
            id=cid,
            sandbox_id=sandbox.id,
            config=config,
            image_ref=image.id,
            created_at=rt.created_at,
            log_path=str(log_path),
            cgroup_path=cgroup_path,
            argv=argv,
            env=env,
            working_dir=working_dir,
            uid=uid,
            gid=gid,
            groups=tuple(config.security.supplemental_groups),
            rootfs=bool(rootfs),
            namespaces=sandbox.namespaces,
        )
        atomic_write_json(d / "container.json", rec.to_json())
        halfmade.unmark(d)
        return rec
    except BaseException:
        if cgroup_path:
            rt.cgroups.remove(cgroup_path)
        shutil.rmtree(d, ignore_errors=True)
        raise
