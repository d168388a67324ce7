"""ConfigMaps and Secrets for the pod-spec layer (its ``ConfigSource``), read with the node's
identity: the Node authorizer allows exactly the objects that pods bound to this node reference.
With ``watched`` (``configMapAndSecretChangeDetectionStrategy: Watch``) they come from the
watched copies; without (``Get``) each read is a GET."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from typing import Any

from pykubelet.api import Pod
from pykubelet.node.client import ApiError, KubeApi
from pykubelet.node.watched_objects import WatchedObjects
from pykubelet.podspec.api_objects import CONFIG_MAP

__all__ = ["ApiConfigSource"]


def _data(kind: str, obj: Mapping[str, Any]) -> dict[str, bytes]:
    """A ConfigMap's ``data`` and ``binaryData``, a Secret's decoded ``data``."""
    out: dict[str, bytes] = {}
    if kind == CONFIG_MAP:
        out.update({k: str(v).encode() for k, v in (obj.get("data") or {}).items()})
        encoded = obj.get("binaryData") or {}
    else:
        encoded = obj.get("data") or {}
    for k, v in encoded.items():
        try:
            out[k] = base64.b64decode(str(v))
        except (binascii.Error, ValueError):
            continue
    return out


class ApiConfigSource:
    def __init__(self, api: KubeApi, watched: WatchedObjects | None = None) -> None:
        self._api = api
        self._watched = watched

    async def get(self, kind: str, namespace: str, name: str) -> Mapping[str, bytes] | None:
        w = self._watched
        if w is not None and w.watches(kind, namespace, name):
            obj = await w.get(kind, namespace, name)
            return None if obj is None else _data(kind, obj)
        plural = "configmaps" if kind == CONFIG_MAP else "secrets"
        try:
            obj = await self._api.request("GET", f"/api/v1/namespaces/{namespace}/{plural}/{name}")
        except ApiError as e:
            if e.status == 404:
                return None
            raise
        return _data(kind, obj)

    async def token(self, pod: Pod, audience: str, expiration_s: int) -> bytes:
        """TokenRequest for the pod's service account, bound to the pod (NodeRestriction
        allows it only for pods bound to this node, with the pod's UID)."""
        account = pod.spec.service_account_name or "default"
        ns = pod.meta.namespace
        answer = await self._api.request(
            "POST",
            f"/api/v1/namespaces/{ns}/serviceaccounts/{account}/token",
            body={
                "apiVersion": "authentication.k8s.io/v1",
                "kind": "TokenRequest",
                "spec": {
                    "audiences": [audience] if audience else [],
                    "expirationSeconds": expiration_s,
                    "boundObjectRef": {
                        "apiVersion": "v1",
                        "kind": "Pod",
                        "name": pod.meta.name,
                        "uid": pod.uid,
                    },
                },
            },
        )
        return str((answer.get("status") or {}).get("token", "")).encode()
