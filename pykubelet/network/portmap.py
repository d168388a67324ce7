"""``PortMapper``: host ports for a pod network that is not CNI, with the CNI ``portmap`` plugin.

The built-in network (``BridgeNetwork``) makes interfaces and addresses itself; for a pod with
mappings whose ``hostPort > 0`` it asks this class to run ``portmap`` once, as a one-plugin chain
whose ``prevResult`` describes what the built-in network made (``eth0`` in the pod's namespace,
its address and gateway), with the ``portMappings`` capability argument and ``snat: true`` (so
127.0.0.1 works: portmap sets ``route_localnet`` on the bridge and masquerades hairpin and
localhost traffic). portmap adds iptables rules: ``CNI-HOSTPORT-DNAT`` jumps to a per-sandbox
chain ``CNI-DN-<hash>``, commented ``dnat name: "<network>" id: "<sandbox id>"``.

Pods without host ports cost nothing here (no exec, no file). For the others, a record (the
config, the capability arguments, the prevResult) is written before ADD, so DEL — which portmap
needs the same mappings for — works at teardown and after an agent crash (``cleanup_leftovers``).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Collection, Sequence
from pathlib import Path
from typing import Any

from pykubelet.network.cni import CniInvocation, ConfList, cni_port_mappings, invoke_list
from pykubelet.network.localnet import LocalnetGuard
from pykubelet.network.types import NetworkError
from pykubelet.runtime.types import PortMapping

__all__ = ["PortMapper", "portmap_conflist"]

log = logging.getLogger(__name__)


def _exists(path: str) -> bool:
    return os.path.exists(path)


def portmap_conflist(network_name: str = "pykubelet") -> ConfList:
    return ConfList(
        name=network_name,
        cni_version="1.0.0",
        plugins=({"type": "portmap", "capabilities": {"portMappings": True}, "snat": True},),
    )


class PortMapper:
    """``add`` after the pod's interface is up, ``remove`` at teardown (idempotent, no exec
    when nothing was added), ``cleanup_leftovers`` at agent start."""

    def __init__(
        self,
        *,
        state_dir: str,
        bin_dir: str = "/usr/lib/cni",
        network_name: str = "pykubelet",
        guard: LocalnetGuard | None = None,
    ) -> None:
        self._guard = guard or LocalnetGuard()
        self._dir = Path(state_dir)
        self._bin_dir = bin_dir
        self._conf = portmap_conflist(network_name)

    def _path(self, sandbox_id: str) -> Path:
        if not sandbox_id or "/" in sandbox_id or sandbox_id.startswith("."):
            raise NetworkError(f"invalid sandbox id {sandbox_id!r}")
        return self._dir / f"{sandbox_id}.json"

    @staticmethod
    def wanted(mappings: Sequence[PortMapping]) -> bool:
        return any(m.host_port > 0 for m in mappings)

    async def add(
        self,
        sandbox_id: str,
        netns_path: str,
        mappings: Sequence[PortMapping],
        *,
        ifname: str,
        address: str,
        prefix_len: int,
        gateway: str = "",
    ) -> bool:
        """Install the forwarding for ``mappings`` with ``hostPort > 0``; False (and nothing
        run) when there are none. On failure nothing is left behind."""
        ports = cni_port_mappings(mappings)
        if not ports:
            return False
        await self._guard.ensure()  # before route_localnet is turned on: see localnet.py
        ip: dict[str, Any] = {"address": f"{address}/{prefix_len}", "interface": 0}
        if gateway:
            ip["gateway"] = gateway
        prev = {
            "cniVersion": self._conf.cni_version,
            "interfaces": [{"name": ifname, "sandbox": netns_path}],
            "ips": [ip],
        }
        caps = {"portMappings": ports}
        record = {
            "conf": self._conf.to_json(),
            "ifname": ifname,
            "netns": netns_path,
            "capabilityArgs": caps,
            "prevResult": prev,
        }
        path = self._path(sandbox_id)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(record))
        os.replace(tmp, path)  # before ADD: a crash mid-ADD still leaves something to DEL
        inv = CniInvocation(container_id=sandbox_id, netns_path=netns_path, ifname=ifname)
        try:
            await invoke_list(
                "ADD",
                self._conf,
                inv,
                self._bin_dir,
                prev_result=prev,
                capability_args=caps,
            )
        except BaseException:
            try:
                await self.remove(sandbox_id)
            except NetworkError as e:
                # the record goes anyway: a sandbox whose set-up failed must stay removable
                log.warning("could not undo the port mappings of %s: %s", sandbox_id, e)
                path.unlink(missing_ok=True)
            raise
        return True

    async def remove(self, sandbox_id: str) -> None:
        """portmap DEL with the recorded mappings; nothing to do without a record."""
        path = self._path(sandbox_id)
        try:
            record = json.loads(path.read_text())
        except FileNotFoundError:
            return
        except (OSError, ValueError) as e:
            log.warning("unreadable port-mapping record %s: %s; removed", path, e)
            path.unlink(missing_ok=True)
            return
        netns = str(record.get("netns", ""))
        if netns and not _exists(netns):
            netns = ""  # DEL needs no namespace: the rules are found by sandbox id
        inv = CniInvocation(
            container_id=sandbox_id, netns_path=netns, ifname=str(record.get("ifname", "eth0"))
        )
        await invoke_list(
            "DEL",
            ConfList.from_json(record.get("conf"), source=str(path)),
            inv,
            self._bin_dir,
            prev_result=record.get("prevResult"),
            capability_args=record.get("capabilityArgs") or {},
        )
        path.unlink(missing_ok=True)

    def recorded(self) -> list[str]:
        if not self._dir.is_dir():
            return []
        return sorted(p.stem for p in self._dir.glob("*.json"))

    async def cleanup_leftovers(self, live_sandbox_ids: Collection[str]) -> list[str]:
        """DEL the mappings of every recorded sandbox not in ``live_sandbox_ids``."""
        released = []
        for sandbox_id in self.recorded():
            if sandbox_id in live_sandbox_ids:
                continue
            try:
                await self.remove(sandbox_id)
            except NetworkError as e:
                log.warning("could not remove the port mappings of %s: %s", sandbox_id, e)
                continue
            released.append(sandbox_id)
        if self._dir.is_dir():
            for tmp in self._dir.glob("*.tmp"):
                tmp.unlink(missing_ok=True)
        return released
