"""``BridgeNetwork``: the built-in pod network, made with rtnetlink from the agent process.

The same effect as the default CNI conflist (bridge, isGateway, hairpin, no masquerade,
host-local addresses, default route via the gateway) without executing a plugin per pod:

- the bridge is ensured once per agent (created when missing, the gateway ``.1/<prefix>`` on
  it, up, IPv4 forwarding on as the CNI bridge plugin does for a gateway); concurrent setups
  wait for the first;
- per pod: an address from ``AddressPool`` (one file), a veth pair whose host side is named from
  the sandbox id (``pkv`` + its first 12 hex digits) so teardown and the start-up sweep find it
  without a record, enslaved, hairpin on and up; its peer is created directly in the pod's
  namespace as ``eth0``, then given the address, brought up and routed via the gateway. Three
  netlink round trips; the holder (``pkshim pause -n``) already brought ``lo`` up.
- MACs follow addresses (``0a:58`` + the IPv4 address, for the bridge too), so a released
  address handed to the next pod leaves no stale neighbour entry anywhere, and the gateway's MAC
  does not change as ports come and go.
- host ports: only for a pod with mappings whose ``hostPort > 0``, CNI's ``portmap`` runs once
  (``PortMapper``, a prevResult describing ``eth0`` and its address) and once more at teardown;
  other pods cost no exec.

Each setup or teardown is one job on a thread pool (netlink and file I/O block; threads start
as jobs need them). The pool is wide because concurrent teardowns wait for each other in order
to delete their veths as one batch, and a batch can only hold the jobs that are running. A setup
that fails removes its veth and releases its address; teardown is idempotent and tolerates a
namespace that is gone (the kernel then deleted the pair already).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import errno
import hashlib
import ipaddress
import logging
import os
import secrets
import threading
from collections.abc import Callable, Collection
from pathlib import Path
from typing import TypeVar

from pykubelet.core.errors import InvalidInput
from pykubelet.network import rtnetlink as rt
from pykubelet.network.ipam import AddressPool
from pykubelet.network.manager import DEFAULT_BRIDGE, DEFAULT_SUBNET
from pykubelet.network.netlink_socket import RouteSocket, Step
from pykubelet.network.portmap import PortMapper
from pykubelet.network.types import (
    NetlinkError,
    NetworkError,
    PodNetworkStatus,
    SandboxNetworkRef,
)
from pykubelet.runtime.types import SandboxConfig

__all__ = ["BridgeNetwork", "host_veth_name", "mac_for"]

log = logging.getLogger(__name__)
T = TypeVar("T")

POD_IFNAME = "eth0"
_IP_FORWARD = Path("/proc/sys/net/ipv4/ip_forward")
_EEXIST = frozenset({errno.EEXIST})
_ENODEV = frozenset({errno.ENODEV})


def mac_for(address: str) -> str:
    """``0a:58`` + the IPv4 address: a locally administered MAC that follows the address, so a
    reused address keeps its MAC and no neighbour cache goes stale (the CNI bridge plugin used
    this scheme before it sent gratuitous ARPs instead)."""
    octets = ipaddress.IPv4Address(address).packed
    return "0a:58:" + ":".join(f"{b:02x}" for b in octets)


def host_veth_name(sandbox_id: str) -> str:
    """``pkv`` + 12 hex digits: the sandbox id's own first 12 when it is hex (as the runtime's
    ids are, so the name matches the short id in its logs), else of its SHA-256. 15 bytes."""
    head = sandbox_id[:12]
    if len(head) == 12 and all(c in "0123456789abcdef" for c in head):
        return "pkv" + head
    return "pkv" + hashlib.sha256(sandbox_id.encode()).hexdigest()[:12]


class BridgeNetwork:
    """Implements ``runtime.network.PodNetwork`` and ``network.AgentNetwork``; also ``attach``
    (the full status) as ``CniNetwork`` does. ``state_dir`` holds the address records."""

    def __init__(
        self,
        *,
        state_dir: str,
        bridge: str = DEFAULT_BRIDGE,
        subnet: str = DEFAULT_SUBNET,
        max_workers: int = 32,
        cni_bin_dir: str = "/usr/lib/cni",
    ) -> None:
        try:
            net = ipaddress.IPv4Network(subnet)
            pool = AddressPool(Path(state_dir) / "addresses", net)
        except ValueError as e:
            raise InvalidInput(str(e), field="subnet") from e
        try:
            rt.encode(rt.GetLink(name=bridge), 0)
        except ValueError as e:
            raise InvalidInput(str(e), field="bridge") from e
        self.bridge = bridge
        self.subnet = net
        self.gateway = str(pool.gateway)
        self._pool = pool
        self._max_workers = max_workers
        self._executor: concurrent.futures.ThreadPoolExecutor | None = None
        self._bridge_lock = threading.Lock()
        self._bridge_link: rt.Link | None = None
        self._locks: dict[str, asyncio.Lock] = {}
        # veth deletions are batched: see _delete_veth
        self._group_base = secrets.randbelow(2**30) + 2**30
        self._batch_lock = threading.Lock()
        self._delete_lock = threading.Lock()
        self._open_batch = _Batch(self._group_base)
        # one host-namespace socket per worker thread, kept: fewer syscalls (and GIL handoffs
        # while the event loop is busy) per pod
        self._thread_sockets = threading.local()
        self._all_sockets: list[RouteSocket] = []
        # host ports: CNI's portmap, run only for pods that have one (docs/network.md)
        self._ports = PortMapper(state_dir=str(Path(state_dir) / "portmap"), bin_dir=cni_bin_dir)

    # ----- async surface -----

    async def _run(self, fn: Callable[[], T]) -> T:
        if self._executor is None:
            self._executor = concurrent.futures.ThreadPoolExecutor(
                max_workers=self._max_workers, thread_name_prefix="pod-network"
            )
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn)

    def _lock(self, sandbox_id: str) -> asyncio.Lock:
        return self._locks.setdefault(sandbox_id, asyncio.Lock())

    async def setup(self, sandbox_id: str, netns_path: str, config: SandboxConfig) -> list[str]:
        """``runtime.network.PodNetwork``: attach, return the pod's IPs."""
        return list((await self.attach(SandboxNetworkRef.of(sandbox_id, netns_path, config))).ips)

    async def attach(self, ref: SandboxNetworkRef) -> PodNetworkStatus:
        _check_id(ref.sandbox_id)
        async with self._lock(ref.sandbox_id):
            job = asyncio.ensure_future(
                self._run(lambda: self._setup_sync(ref.sandbox_id, ref.netns_path))
            )
            try:
                addr = await asyncio.shield(job)
            except asyncio.CancelledError:
                # the job runs on in its thread: undo whatever it ends up doing
                job.add_done_callback(lambda _: self._undo_after_cancel(ref.sandbox_id))
                raise
            if PortMapper.wanted(ref.port_mappings):
                try:
                    await self._ports.add(
                        ref.sandbox_id,
                        ref.netns_path,
                        ref.port_mappings,
                        ifname=POD_IFNAME,
                        address=addr,
                        prefix_len=self.subnet.prefixlen,
                        gateway=self.gateway,
                    )
                except BaseException:
                    await self._run(lambda: self._teardown_quietly(ref.sandbox_id))
                    raise
        log.info("pod %s/%s network: %s", ref.namespace, ref.name, addr)
        return PodNetworkStatus(ips=(addr,), interface=POD_IFNAME, gateway=self.gateway)

    def _undo_after_cancel(self, sandbox_id: str) -> None:
        if self._executor is not None:
            self._executor.submit(self._teardown_quietly, sandbox_id)

    def _teardown_quietly(self, sandbox_id: str) -> None:
        try:
            self._teardown_sync(sandbox_id)
        except NetworkError as e:
            log.warning("could not undo the network of cancelled sandbox %s: %s", sandbox_id, e)

    async def teardown(self, sandbox_id: str, netns_path: str = "") -> None:
        """Remove the host veth (its peer goes with it) and release the address. Idempotent;
        ``netns_path`` is not needed (the veth is found by name)."""
        _check_id(sandbox_id)
        async with self._lock(sandbox_id):
            try:
                await self._ports.remove(sandbox_id)  # no exec unless it had host ports
            finally:
                await self._run(lambda: self._teardown_sync(sandbox_id))
        self._locks.pop(sandbox_id, None)

    async def cleanup_leftovers(self, live_sandbox_ids: Collection[str]) -> list[str]:
        """Release the address and host veth of every recorded sandbox not in
        ``live_sandbox_ids``; return their ids (sorted; a record without a known holder is
        released and not listed)."""
        live = set(live_sandbox_ids)
        unmapped = await self._ports.cleanup_leftovers(live)
        released = await self._run(lambda: self._cleanup_sync(live))
        return sorted({*released, *unmapped})

    def close(self) -> None:
        """Stop the worker threads (after the jobs in flight) and close their sockets."""
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None
        with self._batch_lock:
            sockets, self._all_sockets = self._all_sockets, []
            self._thread_sockets = threading.local()
        for sock in sockets:
            sock.close()

    def _host(self) -> RouteSocket:
        """This worker thread's socket in the host's namespace."""
        sock: RouteSocket | None = getattr(self._thread_sockets, "sock", None)
        if sock is None:
            sock = RouteSocket.open()
            self._thread_sockets.sock = sock
            with self._batch_lock:
                self._all_sockets.append(sock)
        return sock

    # ----- blocking work (worker threads) -----

    def _setup_sync(self, sandbox_id: str, netns_path: str) -> str:
        if not netns_path:
            raise NetworkError(f"sandbox {sandbox_id}: no network namespace to attach")
        addr = self._pool.allocate(sandbox_id)
        veth = host_veth_name(sandbox_id)
        try:
            self._attach_sync(veth, addr, netns_path)
        except BaseException:
            try:
                gone = Step(
                    request=rt.DeleteLink(name=veth), what=f"delete {veth}", tolerate=_ENODEV
                )
                self._host().call([gone])
            except NetworkError as e:
                log.warning("could not remove %s after a failed setup: %s", veth, e)
            self._pool.release(sandbox_id)
            raise
        return addr

    def _attach_sync(self, veth: str, addr: str, netns_path: str) -> None:
        try:
            netns_fd = os.open(netns_path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError as e:
            raise NetworkError(f"network namespace {netns_path} does not exist") from e
        except OSError as e:
            raise NetworkError(f"open network namespace {netns_path}: {e.strerror}") from e
        try:
            host = self._host()
            link = self._create_veth(host, veth, netns_fd, netns_path, mac_for(addr))
            host.call(
                [Step(request=rt.SetHairpin(index=link.index), what=f"turn hairpin on for {veth}")]
            )
        finally:
            os.close(netns_fd)
        peer = link.link
        prefix = self.subnet.prefixlen
        with RouteSocket.open(netns_path) as pod:
            pod.call(
                [
                    Step(
                        request=rt.AddAddress(index=peer, address=addr, prefix_len=prefix),
                        what=f"add {addr}/{prefix} to {POD_IFNAME}",
                    ),
                    Step(request=rt.SetLink(index=peer, up=True), what=f"set {POD_IFNAME} up"),
                    Step(
                        request=rt.AddRoute(
                            destination="0.0.0.0/0", gateway=self.gateway, index=peer
                        ),
                        what=f"add the default route via {self.gateway}",
                    ),
                ]
            )

    def _create_veth(
        self, host: RouteSocket, veth: str, netns_fd: int, netns: str, mac: str
    ) -> rt.Link:
        """The veth pair, its host side enslaved and up; ensures the bridge and retries once
        if the bridge we knew was deleted meanwhile."""
        for attempt in (1, 2):
            bridge = self._ensure_bridge(host, fresh=attempt == 2)
            create = rt.CreateVeth(
                name=veth,
                peer=POD_IFNAME,
                peer_netns_fd=netns_fd,
                peer_mac=mac,
                master=bridge.index,
                mtu=bridge.mtu,
            )
            try:
                out = host.call(
                    [
                        Step(
                            request=create,
                            what=f"create veth {veth} with {POD_IFNAME} in {netns} "
                            f"on bridge {self.bridge}",
                        ),
                        Step(request=rt.GetLink(name=veth), what=f"look up {veth}"),
                    ]
                )
            except NetlinkError as e:
                if attempt == 1 and e.errno in (errno.EINVAL, errno.ENODEV):
                    continue  # a stale bridge index: ensure it again
                raise
            return out[1].links[0]
        raise AssertionError("unreachable")

    def _ensure_bridge(self, host: RouteSocket, *, fresh: bool = False) -> rt.Link:
        with self._bridge_lock:
            if self._bridge_link is not None and not fresh:
                return self._bridge_link
            name = self.bridge
            out = host.call(
                [
                    Step(
                        request=rt.CreateBridge(name=name, mac=mac_for(self.gateway)),
                        what=f"create bridge {name}",
                        tolerate=_EEXIST,
                    ),
                    Step(request=rt.GetLink(name=name), what=f"look up bridge {name}"),
                ]
            )
            link = out[1].links[0]
            if link.kind != "bridge":
                raise NetworkError(
                    f"{name} exists and is not a bridge ({link.kind or 'a plain device'})"
                )
            prefix = self.subnet.prefixlen
            host.call(
                [
                    Step(request=rt.SetLink(index=link.index, up=True), what=f"set {name} up"),
                    Step(
                        request=rt.AddAddress(
                            index=link.index, address=self.gateway, prefix_len=prefix
                        ),
                        what=f"add gateway {self.gateway}/{prefix} to {name}",
                        tolerate=_EEXIST,
                    ),
                ]
            )
            _enable_forwarding()
            self._bridge_link = link
            return link

    def _teardown_sync(self, sandbox_id: str) -> None:
        self._delete_veth(self._host(), host_veth_name(sandbox_id))
        self._pool.release(sandbox_id)

    def _delete_veth(self, host: RouteSocket, veth: str) -> None:
        """Delete ``veth`` (its peer goes with it), batched with concurrent teardowns.

        Deleting one veth holds the RTNL lock through RCU grace periods (~10 ms here), so 110
        one by one take a second. Instead each deletion puts its veth in the open batch's
        device group (under ``_batch_lock``, so membership is exact), then one thread at a time
        (``_delete_lock``) closes the batch it finds open and deletes the whole group with one
        message; the others find their batch done. A crash in between leaves the veth in a
        group and its address recorded, so the start-up sweep deletes it by name."""
        with self._batch_lock:
            batch = self._open_batch
            step = Step(
                request=rt.SetGroup(name=veth, group=batch.group),
                what=f"mark {veth} for deletion",
                tolerate=_ENODEV,
            )
            if host.call([step])[0].error == errno.ENODEV:
                return  # gone already (its namespace died, or an earlier teardown)
        with self._delete_lock:
            if not batch.done:
                with self._batch_lock:
                    self._open_batch = _Batch(self._next_group(batch.group))
                try:
                    host.call(
                        [
                            Step(
                                request=rt.DeleteGroup(group=batch.group),
                                what=f"delete veth group {batch.group}",
                                tolerate=_ENODEV,
                            )
                        ]
                    )
                except NetlinkError as e:
                    batch.error = e
                finally:
                    batch.done = True
        if batch.error is not None:
            raise NetlinkError(f"delete {veth}", batch.error.errno, str(batch.error))

    def _next_group(self, group: int) -> int:
        return self._group_base + (group - self._group_base + 1) % 2**20

    def _cleanup_sync(self, live: set[str]) -> list[str]:
        released: list[str] = []
        for addr, sandbox_id in sorted(self._pool.holders().items()):
            if sandbox_id in live:
                continue
            if not sandbox_id:
                self._pool.release_address(addr)
                continue
            try:
                self._teardown_sync(sandbox_id)
            except NetworkError as e:
                log.warning("could not release the network of sandbox %s: %s", sandbox_id, e)
                continue
            released.append(sandbox_id)
        return sorted(released)


class _Batch:
    """Veths waiting to be deleted together as device group ``group``."""

    __slots__ = ("done", "error", "group")

    def __init__(self, group: int) -> None:
        self.group = group
        self.done = False
        self.error: NetlinkError | None = None


def _check_id(sandbox_id: str) -> None:
    if not sandbox_id:
        raise InvalidInput("must not be empty", field="sandbox_id")


def _enable_forwarding() -> None:
    """As the CNI bridge plugin does for a gateway bridge (``isGateway``)."""
    try:
        if _IP_FORWARD.read_text().strip() != "1":
            _IP_FORWARD.write_text("1")
    except OSError as e:
        log.warning("could not turn on IPv4 forwarding: %s", e)
