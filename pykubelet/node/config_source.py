"""ConfigMaps and Secrets for the pod-spec layer (its ``ConfigSource``), read from the API
server with the node's identity: the Node authorizer allows exactly the objects that pods bound
to this node reference. Read when a pod is prepared, not cached or watched."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping

from pykubelet.api import Pod
from pykubelet.node.client import ApiError, KubeApi
from pykubelet.podspec.api_objects import CONFIG_MAP

__all__ = ["ApiConfigSource"]


class ApiConfigSource:
    def __init__(self, api: KubeApi) -> None:
        self._api = api

    async def get(self, kind: str, namespace: str, name: str) -> Mapping[str, bytes] | None:
        plural = "configmaps" if kind == CONFIG_MAP else "secrets"
        try:
            obj = await self._api.request("GET", f"/api/v1/namespaces/{namespace}/{plural}/{name}")
        except ApiError as e:
            if e.status == 404:
                return None
            raise
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
