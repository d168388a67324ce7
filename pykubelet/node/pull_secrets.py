"""A pod's ``imagePullSecrets`` read from the API server (the pod layer's
``PullSecretResolver``).

Each named Secret is read with the node's identity (the Node authorizer allows it because a
pod bound to this node references it). ``kubernetes.io/dockerconfigjson`` (``.dockerconfigjson``)
and ``kubernetes.io/dockercfg`` (``.dockercfg``) secrets become keyring entries in the pod's
order; a missing secret, another type or undecodable data is left out with a log line, as the
Go kubelet goes on without it.
"""

from __future__ import annotations

import base64
import binascii
import logging
from collections.abc import Sequence

from pykubelet.core.errors import InvalidInput
from pykubelet.node.client import ApiError, KubeApi
from pykubelet.pods.credentials import Keyring

__all__ = ["ApiPullSecrets"]

log = logging.getLogger(__name__)

_KEYS = {
    "kubernetes.io/dockerconfigjson": ".dockerconfigjson",
    "kubernetes.io/dockercfg": ".dockercfg",
}


class ApiPullSecrets:
    def __init__(self, api: KubeApi) -> None:
        self._api = api

    async def keyring(self, namespace: str, names: Sequence[str]) -> Keyring:
        ring = Keyring()
        for name in names:
            where = f"secret {namespace}/{name}"
            try:
                secret = await self._api.request(
                    "GET", f"/api/v1/namespaces/{namespace}/secrets/{name}"
                )
            except ApiError as e:
                log.warning("image pull %s not used: %s", where, e)
                continue
            key = _KEYS.get(str(secret.get("type", "")))
            data = (secret.get("data") or {}).get(key or "")
            if not key or not isinstance(data, str):
                log.warning("image pull %s not used: type %r", where, secret.get("type"))
                continue
            try:
                ring = ring + Keyring.from_docker_config(base64.b64decode(data), where)
            except (InvalidInput, binascii.Error, ValueError) as e:
                log.warning("image pull %s not used: %s", where, e)
        return ring
