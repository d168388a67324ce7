"""``CniNetwork``: pod networking with real CNI plugins, surviving agent crashes.

Every sandbox gets two attachments, as containerd's CRI plugin does: the loopback network on
``lo`` and the primary network (the first config in the conf dir, or the built-in default) on
``eth0``. Each successful ADD is recorded in the state dir (one JSON file per sandbox: the configs
used, the netns and the cached results) before the call returns, so DEL can pass the cached result
as ``prevResult`` and an agent that crashed can release what it left behind on the next start.
The pod's port mappings (hostPort > 0) go, as the ``portMappings`` capability argument, to the
plugins whose config declares it (``portmap``), on ADD, CHECK and DEL alike; they are recorded
with the attachment so a DEL after a crash still removes the forwarding rules.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any

from pykubelet.network.cni import (
    CniInvocation,
    ConfList,
    cni_port_mappings,
    invoke_list,
    load_conf_dir,
    result_ips,
)
from pykubelet.network.localnet import LocalnetGuard
from pykubelet.network.types import (
    CniPluginError,
    NetworkError,
    PodNetworkStatus,
    SandboxNetworkRef,
)
from pykubelet.runtime.types import SandboxConfig

__all__ = ["DEFAULT_BRIDGE", "DEFAULT_SUBNET", "CniNetwork", "default_conflist", "loopback_conf"]

log = logging.getLogger(__name__)

DEFAULT_BRIDGE = "pykbr0"
# 10.88.0.0/16 is podman's default; a /24 high in it keeps clear of podman's first networks and
# of 10.246.0.0/24.
DEFAULT_SUBNET = "10.88.42.0/24"
CNI_VERSION = "1.0.0"


def default_conflist(
    *, bridge: str = DEFAULT_BRIDGE, subnet: str = DEFAULT_SUBNET, data_dir: str = ""
) -> ConfList:
    """Bridge with a gateway on the node, host-local addresses, no masquerading: pods reach
    each other and the node. Chained ``portmap`` (capability ``portMappings``, ``snat`` so
    127.0.0.1 works) realises host ports: it adds iptables rules only for pods that have one."""
    ipam: dict[str, Any] = {
        "type": "host-local",
        "ranges": [[{"subnet": subnet}]],
        "routes": [{"dst": "0.0.0.0/0"}],
    }
    if data_dir:
        ipam["dataDir"] = data_dir
    return ConfList(
        name="pykubelet",
        cni_version=CNI_VERSION,
        plugins=(
            {
                "type": "bridge",
                "bridge": bridge,
                "isGateway": True,
                "ipMasq": False,
                "hairpinMode": True,
                "ipam": ipam,
            },
            {"type": "portmap", "capabilities": {"portMappings": True}, "snat": True},
        ),
    )


def loopback_conf() -> ConfList:
    return ConfList(name="cni-loopback", cni_version=CNI_VERSION, plugins=({"type": "loopback"},))


def _exists(path: str) -> bool:
    return os.path.exists(path)


class CniNetwork:
    """Implements ``runtime.network.PodNetwork`` (``setup``/``teardown``) for the process
    runtime, plus ``attach`` (the full status), ``check`` and ``cleanup_leftovers``.
    ``conf_dir`` may be empty or missing: the built-in default network applies."""

    def __init__(
        self,
        *,
        state_dir: str,
        conf_dir: str = "/etc/cni/net.d",
        bin_dir: str = "/usr/lib/cni",
        default: ConfList | None = None,
    ) -> None:
        self._state = Path(state_dir)
        self._conf_dir = conf_dir
        self._bin_dir = bin_dir
        self._default = default
        self._locks: dict[str, asyncio.Lock] = {}
        self._guard = LocalnetGuard()

    def _primary(self) -> ConfList:
        conf = load_conf_dir(self._conf_dir) if self._conf_dir else None
        if conf is not None:
            return conf
        if self._default is not None:
            return self._default
        # Addresses are stored under the agent's own root, so they live and die with it (a
        # deleted root leaks nothing). Two agents on one machine need distinct networks.
        return default_conflist(data_dir=str(self._state / "networks"))

    def _record_path(self, sandbox_id: str) -> Path:
        if not sandbox_id or "/" in sandbox_id or sandbox_id.startswith("."):
            raise NetworkError(f"invalid sandbox id {sandbox_id!r}")
        return self._state / "attachments" / f"{sandbox_id}.json"

    def _lock(self, sandbox_id: str) -> asyncio.Lock:
        return self._locks.setdefault(sandbox_id, asyncio.Lock())

    def _write_record(self, sandbox_id: str, record: Mapping[str, Any]) -> None:
        path = self._record_path(sandbox_id)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(record))
        os.replace(tmp, path)

    def _read_record(self, sandbox_id: str) -> dict[str, Any] | None:
        try:
            doc = json.loads(self._record_path(sandbox_id).read_text())
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as e:
            log.warning("unreadable network record for %s: %s", sandbox_id, e)
            return None
        return doc if isinstance(doc, dict) else None

    async def setup(self, sandbox_id: str, netns_path: str, config: SandboxConfig) -> list[str]:
        """``runtime.network.PodNetwork``: attach, return the pod's IPs (primary first)."""
        return list((await self.attach(SandboxNetworkRef.of(sandbox_id, netns_path, config))).ips)

    async def attach(self, ref: SandboxNetworkRef) -> PodNetworkStatus:
        args = (
            ("K8S_POD_NAMESPACE", ref.namespace),
            ("K8S_POD_NAME", ref.name),
            ("K8S_POD_INFRA_CONTAINER_ID", ref.sandbox_id),
            ("K8S_POD_UID", ref.uid),
        )
        primary = self._primary()
        attachments = [("lo", loopback_conf()), ("eth0", primary)]
        # capability arguments, as containerd passes them; only plugins that declare one get it
        caps = {"portMappings": cni_port_mappings(ref.port_mappings)}
        if caps["portMappings"]:
            await self._guard.ensure()  # portmap turns route_localnet on: see localnet.py
            if not any(
                isinstance(p.get("capabilities"), dict) and p["capabilities"].get("portMappings")
                for p in primary.plugins
            ):
                log.warning(
                    "pod %s/%s has host ports but network %r has no plugin with the "
                    "portMappings capability (portmap): they are not realised",
                    ref.namespace,
                    ref.name,
                    primary.name,
                )
        async with self._lock(ref.sandbox_id):
            record: dict[str, Any] = {
                "netns": ref.netns_path,
                "capabilityArgs": caps,
                "attachments": [],
            }
            # Record before ADD: a crash mid-ADD still leaves something for cleanup to DEL.
            for ifname, conf in attachments:
                record["attachments"].append(
                    {"ifname": ifname, "conf": conf.to_json(), "result": None}
                )
            self._write_record(ref.sandbox_id, record)
            final: dict[str, Any] | None = None
            try:
                for i, (ifname, conf) in enumerate(attachments):
                    inv = CniInvocation(
                        container_id=ref.sandbox_id,
                        netns_path=ref.netns_path,
                        ifname=ifname,
                        args=args,
                    )
                    result = await invoke_list(
                        "ADD", conf, inv, self._bin_dir, capability_args=caps
                    )
                    record["attachments"][i]["result"] = result
                    self._write_record(ref.sandbox_id, record)
                    final = result
            except BaseException:
                await self._teardown_locked(ref.sandbox_id)
                raise
        ips, gateway = result_ips(final)
        log.info("pod %s/%s network: %s", ref.namespace, ref.name, ",".join(ips) or "no address")
        return PodNetworkStatus(ips=ips, interface="eth0", gateway=gateway)

    async def check(self, sandbox_id: str) -> None:
        """CNI CHECK on every attachment; raises ``CniPluginError`` when one is broken."""
        record = self._read_record(sandbox_id)
        if record is None:
            raise NetworkError(f"sandbox {sandbox_id} has no network attachment")
        for att in record.get("attachments", []):
            conf = ConfList.from_json(att["conf"])
            inv = CniInvocation(
                container_id=sandbox_id, netns_path=record.get("netns", ""), ifname=att["ifname"]
            )
            await invoke_list(
                "CHECK",
                conf,
                inv,
                self._bin_dir,
                prev_result=att.get("result"),
                capability_args=record.get("capabilityArgs"),
            )

    async def teardown(self, sandbox_id: str, netns_path: str = "") -> None:
        """Release addresses and interfaces (CNI DEL with the cached results). Idempotent. The
        namespace recorded at ADD is used while it exists; ``netns_path`` is informational."""
        async with self._lock(sandbox_id):
            await self._teardown_locked(sandbox_id)
        self._locks.pop(sandbox_id, None)

    async def _teardown_locked(self, sandbox_id: str) -> None:
        record = self._read_record(sandbox_id)
        if record is None:
            return
        netns = str(record.get("netns", ""))
        if netns and not _exists(netns):
            netns = ""  # the spec allows DEL without a namespace: release addresses only
        caps = record.get("capabilityArgs")
        if not isinstance(caps, dict):
            caps = {}
        failures: list[str] = []
        for att in reversed(record.get("attachments", [])):
            try:
                conf = ConfList.from_json(att["conf"])
                inv = CniInvocation(container_id=sandbox_id, netns_path=netns, ifname=att["ifname"])
                await invoke_list(
                    "DEL",
                    conf,
                    inv,
                    self._bin_dir,
                    prev_result=att.get("result"),
                    capability_args=caps,
                )
            except CniPluginError as e:
                failures.append(str(e))
        if failures:
            raise CniPluginError("; ".join(failures))
        self._record_path(sandbox_id).unlink(missing_ok=True)

    async def cleanup_leftovers(self, live_sandbox_ids: Collection[str]) -> list[str]:
        released: list[str] = []
        directory = self._state / "attachments"
        if not directory.is_dir():
            return released
        for path in sorted(directory.glob("*.json")):
            sandbox_id = path.stem
            if sandbox_id in live_sandbox_ids:
                continue
            try:
                await self.teardown(sandbox_id)
            except NetworkError as e:
                log.warning("could not release the network of sandbox %s: %s", sandbox_id, e)
                continue
            released.append(sandbox_id)
        for tmp in directory.glob("*.tmp"):
            tmp.unlink(missing_ok=True)
        return released
