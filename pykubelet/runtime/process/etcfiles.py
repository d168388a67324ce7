"""The pod's /etc/hostname, /etc/hosts and /etc/resolv.conf, as containerd provides them:
written once per sandbox and bind-mounted into every image container of the pod (unless the
container mounts its own at that path)."""

from __future__ import annotations

import socket
from collections.abc import Sequence
from pathlib import Path

from pykubelet.runtime.process.records import atomic_write_json
from pykubelet.runtime.types import Mount, NamespaceMode, SandboxConfig

__all__ = ["ETC_FILES", "etc_mounts", "write_etc_files", "write_sandbox_files"]

ETC_FILES = ("hostname", "hosts", "resolv.conf")


def write_etc_files(sandbox_dir: Path, config: SandboxConfig, ips: list[str]) -> None:
    host_net = config.network == NamespaceMode.NODE
    hostname = socket.gethostname() if host_net else (config.hostname or config.name)
    (sandbox_dir / "hostname").write_text(hostname + "\n")
    hosts = [
        "# Kubernetes-managed hosts file (pykubelet process runtime).",
        "127.0.0.1\tlocalhost",
        "::1\tlocalhost ip6-localhost ip6-loopback",
    ]
    hosts += [f"{ip}\t{hostname}" for ip in ips]
    (sandbox_dir / "hosts").write_text("\n".join(hosts) + "\n")
    if config.dns_servers:
        resolv = "".join(f"nameserver {s}\n" for s in config.dns_servers)
    else:
        try:  # as containerd: the host's resolver configuration
            resolv = Path("/etc/resolv.conf").read_text()
        except OSError:
            resolv = ""
    (sandbox_dir / "resolv.conf").write_text(resolv)


def etc_mounts(sandbox_dir: Path, mounts: tuple[Mount, ...]) -> tuple[Mount, ...]:
    """The pod's files for the paths the container does not mount itself."""
    taken = {m.container_path.rstrip("/") for m in mounts}
    return tuple(
        Mount(container_path=f"/etc/{name}", host_path=str(sandbox_dir / name))
        for name in ETC_FILES
        if f"/etc/{name}" not in taken and (sandbox_dir / name).exists()
    )


def write_sandbox_files(sandbox_dir: Path, config: SandboxConfig, ips: Sequence[str]) -> None:
    """The pod's addresses (when it has any) and its /etc files, in one worker-thread job."""
    if ips:
        atomic_write_json(sandbox_dir / "ips.json", list(ips))
    write_etc_files(sandbox_dir, config, list(ips))
