"""The node Lease in ``kube-node-lease`` (reference §2): the liveness signal of the node.

Renewed every ``0.25 * nodeLeaseDurationSeconds`` (10 s of 40 s): PUT the cached lease with a
new ``renewTime``; on any failure, "ensure" it (GET, POST on 404) with back-off 200 ms doubling
to 7 s, then PUT again (at most 5 tries, a 409 re-reads). The owner reference to the Node is
added once the Node's UID is known.
"""

from __future__ import annotations

import datetime as _dt
import logging
from collections.abc import Callable
from typing import Any

from pykubelet.core.clock import Clock
from pykubelet.node.client import ApiError, KubeApi

__all__ = ["LeaseController", "micro_time"]

log = logging.getLogger(__name__)

NAMESPACE = "kube-node-lease"
UPDATE_RETRIES = 5


def micro_time(ts: float) -> str:
    """metav1.MicroTime: six fractional digits."""
    return _dt.datetime.fromtimestamp(ts, tz=_dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class LeaseController:
    def __init__(
        self,
        api: KubeApi,
        node_name: str,
        clock: Clock,
        *,
        duration_s: int,
        node_uid: Callable[[], str],
    ) -> None:
        self._api = api
        self._node = node_name
        self._clock = clock
        self._duration = duration_s
        self._node_uid = node_uid
        self._lease: dict[str, Any] | None = None
        self.renewals = 0

    @property
    def interval_s(self) -> float:
        return 0.25 * self._duration

    @property
    def _path(self) -> str:
        return f"/apis/coordination.k8s.io/v1/namespaces/{NAMESPACE}/leases/{self._node}"

    async def run(self) -> None:
        while True:
            try:
                await self.renew()
            except Exception:  # supervision point: keep heartbeating whatever happens
                log.exception("renewing the node lease failed")
            await self._clock.sleep(self.interval_s)

    def _with_owner(self, lease: dict[str, Any]) -> dict[str, Any]:
        uid = self._node_uid()
        md = lease.setdefault("metadata", {})
        if uid and not md.get("ownerReferences"):
            md["ownerReferences"] = [
                {"apiVersion": "v1", "kind": "Node", "name": self._node, "uid": uid}
            ]
        return lease

    def _new(self) -> dict[str, Any]:
        return self._with_owner(
            {
                "apiVersion": "coordination.k8s.io/v1",
                "kind": "Lease",
                "metadata": {"name": self._node, "namespace": NAMESPACE},
                "spec": {
                    "holderIdentity": self._node,
                    "leaseDurationSeconds": self._duration,
                    "renewTime": micro_time(self._clock.now()),
                },
            }
        )

    async def renew(self) -> None:
        if self._lease is not None:
            try:
                await self._put(self._lease)
                return
            except ApiError as e:
                log.info("lease renewal failed (%s); reading it again", e)
        for _ in range(UPDATE_RETRIES):
            existing = await self._ensure()
            if existing is None:
                return  # created fresh
            try:
                await self._put(existing)
                return
            except ApiError as e:
                log.warning("lease update failed: %s", e)
        raise ApiError(0, f"lease not renewed after {UPDATE_RETRIES} tries")

    async def _put(self, lease: dict[str, Any]) -> None:
        lease = self._with_owner(lease)
        spec = lease.setdefault("spec", {})
        spec["holderIdentity"] = self._node
        spec["leaseDurationSeconds"] = self._duration
        spec["renewTime"] = micro_time(self._clock.now())
        self._lease = await self._api.request("PUT", self._path, body=lease)
        self.renewals += 1

    async def _ensure(self) -> dict[str, Any] | None:
        """The server's lease, or None after creating it; retried with back-off."""
        delay = 0.2
        while True:
            try:
                return await self._api.request("GET", self._path)
            except ApiError as e:
                if e.status == 404:
                    try:
                        self._lease = await self._api.request(
                            "POST", self._path.rsplit("/", 1)[0], body=self._new()
                        )
                        self.renewals += 1
                        return None
                    except ApiError as e2:
                        log.warning("creating the node lease failed: %s", e2)
                else:
                    log.warning("reading the node lease failed: %s", e)
            self._lease = None
            await self._clock.sleep(delay)
            delay = min(delay * 2, 7.0)
