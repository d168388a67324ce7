"""ConfigMaps and Secrets a pod references (env ``valueFrom``, ``envFrom``, ``configMap`` /
``secret`` volumes and projected sources), read once before its containers start.

``ConfigSource`` is what node mode provides (``pykubelet.node``); a standalone node has none and
keeps refusing these sources. ``fetch`` reads every referenced object through it (missing ones
are remembered as missing); the pure functions below then resolve keys, ``envFrom`` and volume
files with upstream's rules and messages: a missing object or key is a
``CreateContainerConfigError`` unless marked ``optional``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from pykubelet.api import Pod
from pykubelet.pods.spec_errors import ContainerConfigError, VolumeSetupError
from pykubelet.podspec.downward import DownwardFile

__all__ = [
    "CONFIG_MAP",
    "SECRET",
    "TOKEN",
    "ConfigSource",
    "PodObjects",
    "env_from_values",
    "fetch",
    "key_value",
    "references",
    "token_file",
    "token_refresh_s",
    "token_requests",
    "volume_files",
]

CONFIG_MAP = "ConfigMap"
SECRET = "Secret"
TOKEN = "ServiceAccountToken"  # PodObjects key: (TOKEN, "<audience>|<expirationSeconds>")
DEFAULT_TOKEN_EXPIRATION_S = 3600
_VOLUME_KINDS = {"configMap": CONFIG_MAP, "secret": SECRET}
_REF_KINDS = {"configMapKeyRef": CONFIG_MAP, "secretKeyRef": SECRET}
_ENV_FROM_KINDS = {"configMapRef": CONFIG_MAP, "secretRef": SECRET}


class ConfigSource(Protocol):
    async def get(self, kind: str, namespace: str, name: str) -> Mapping[str, bytes] | None:
        """The object's data (a Secret's decoded; a ConfigMap's ``data`` and ``binaryData``),
        None when it does not exist. Other failures raise."""
        ...

    async def token(self, pod: Pod, audience: str, expiration_s: int) -> bytes:
        """A service-account token bound to ``pod`` (TokenRequest); failures raise."""
        ...


@dataclass(frozen=True, slots=True)
class PodObjects:
    data: Mapping[tuple[str, str], Mapping[str, bytes] | None] = field(default_factory=dict)

    def get(self, kind: str, name: str) -> Mapping[str, bytes] | None:
        return self.data.get((kind, name))


def _name(obj: Any) -> str:
    return str((obj or {}).get("name") or "") if isinstance(obj, Mapping) else ""


def references(pod: Pod) -> set[tuple[str, str]]:
    """Every (kind, name) the pod's containers and volumes reference."""
    spec = pod.raw.get("spec") or {}
    refs: set[tuple[str, str]] = set()
    for key in ("initContainers", "containers"):
        for c in spec.get(key) or []:
            for e in (c or {}).get("env") or []:
                source = (e or {}).get("valueFrom") or {}
                for k, kind in _REF_KINDS.items():
                    if k in source:
                        refs.add((kind, _name(source[k])))
            for e in (c or {}).get("envFrom") or []:
                for k, kind in _ENV_FROM_KINDS.items():
                    if k in (e or {}):
                        refs.add((kind, _name(e[k])))
    for vol in spec.get("volumes") or []:
        for k, kind in _VOLUME_KINDS.items():
            if k in (vol or {}):
                src = vol[k] or {}
                refs.add(
                    (kind, str(src.get("name") if k == "configMap" else src.get("secretName")))
                )
        for source in ((vol or {}).get("projected") or {}).get("sources") or []:
            for k, kind in _VOLUME_KINDS.items():
                if k in (source or {}):
                    refs.add((kind, _name(source[k])))
    return {r for r in refs if r[1]}


def token_key(spec: Mapping[str, Any]) -> str:
    expiration = spec.get("expirationSeconds") or DEFAULT_TOKEN_EXPIRATION_S
    return f"{spec.get('audience') or ''}|{expiration}"


def token_requests(pod: Pod) -> set[str]:
    """The (audience, expiration) of every projected ``serviceAccountToken`` source."""
    out = set()
    for vol in (pod.raw.get("spec") or {}).get("volumes") or []:
        for source in ((vol or {}).get("projected") or {}).get("sources") or []:
            if isinstance(source, Mapping) and "serviceAccountToken" in source:
                out.add(token_key(source["serviceAccountToken"] or {}))
    return out


async def fetch(
    pod: Pod, source: ConfigSource, *, keep_tokens: PodObjects | None = None
) -> PodObjects:
    """Read every referenced object; tokens are requested anew unless ``keep_tokens`` (an
    earlier fetch whose tokens are still fresh) has them."""
    data: dict[tuple[str, str], Mapping[str, bytes] | None] = {
        (kind, name): await source.get(kind, pod.meta.namespace, name)
        for kind, name in sorted(references(pod))
    }
    for key in sorted(token_requests(pod)):
        kept = keep_tokens.get(TOKEN, key) if keep_tokens is not None else None
        if kept is not None:
            data[(TOKEN, key)] = kept
            continue
        audience, _, expiration = key.rpartition("|")
        data[(TOKEN, key)] = {"token": await source.token(pod, audience, int(expiration))}
    return PodObjects(data)


def token_refresh_s(pod: Pod) -> float | None:
    """When the pod's tokens must be requested again: 80 % of the shortest lifetime, as the
    kubelet's token manager; None without tokens."""
    lifetimes = [int(k.rpartition("|")[2]) for k in token_requests(pod)]
    return 0.8 * min(lifetimes) if lifetimes else None


def _kind_word(kind: str) -> str:
    return "configmap" if kind == CONFIG_MAP else "secret"


def key_value(objects: PodObjects, source: Mapping[str, Any], at: str) -> str | None:
    """A ``configMapKeyRef``/``secretKeyRef``; None when it is optional and missing."""
    k = next(k for k in _REF_KINDS if k in source)
    kind, ref = _REF_KINDS[k], source[k] or {}
    name, key, optional = _name(ref), str(ref.get("key") or ""), bool(ref.get("optional"))
    data = objects.get(kind, name)
    if data is None:
        if optional:
            return None
        raise ContainerConfigError(f'{_kind_word(kind)} "{name}" not found', field=f"{at}.{k}")
    if key not in data:
        if optional:
            return None
        raise ContainerConfigError(
            f"couldn't find key {key} in {kind} {name}", field=f"{at}.{k}.key"
        )
    return data[key].decode(errors="replace")


def env_from_values(
    objects: PodObjects, env_from: Sequence[Mapping[str, Any]], at: str
) -> list[tuple[str, str]]:
    """``envFrom`` in order, each key with its ``prefix``; later sources win."""
    out: dict[str, str] = {}
    for i, item in enumerate(env_from):
        k = next((k for k in _ENV_FROM_KINDS if k in item), "")
        if not k:
            raise ContainerConfigError(
                "names neither configMapRef nor secretRef", field=f"{at}[{i}]"
            )
        kind, ref = _ENV_FROM_KINDS[k], item[k] or {}
        data = objects.get(kind, _name(ref))
        if data is None:
            if ref.get("optional"):
                continue
            raise ContainerConfigError(
                f'{_kind_word(kind)} "{_name(ref)}" not found', field=f"{at}[{i}].{k}"
            )
        prefix = str(item.get("prefix") or "")
        for key, value in data.items():
            out[prefix + key] = value.decode(errors="replace")
    return list(out.items())


def token_file(objects: PodObjects, spec: Mapping[str, Any], name: str) -> DownwardFile:
    """A projected ``serviceAccountToken`` source: the token fetched for it, at ``path``."""
    data = objects.get(TOKEN, token_key(spec))
    path = str(spec.get("path") or "")
    if data is None or not path:
        raise VolumeSetupError(f'volume "{name}": no service account token for it', volume=name)
    return DownwardFile(path=path, content=data["token"])


def volume_files(
    objects: PodObjects, kind: str, spec: Mapping[str, Any], name: str
) -> tuple[DownwardFile, ...]:
    """The files of a ``configMap``/``secret`` volume or projected source: every key, or the
    listed ``items`` (``key`` → ``path``, ``mode``)."""
    obj_name = str(
        spec.get("secretName")
        if kind == SECRET and "secretName" in spec
        else spec.get("name") or ""
    )
    data = objects.get(kind, obj_name)
    if data is None:
        if spec.get("optional"):
            return ()
        raise VolumeSetupError(
            f'{_kind_word(kind)} "{obj_name}" not found (volume "{name}")', volume=name
        )
    items = spec.get("items")
    if not items:
        return tuple(DownwardFile(path=k, content=v) for k, v in sorted(data.items()))
    files = []
    for item in items:
        key, path = str(item.get("key") or ""), str(item.get("path") or "")
        if key not in data:
            if spec.get("optional"):
                continue
            raise VolumeSetupError(
                f"configmap references non-existent config key: {key}"
                if kind == CONFIG_MAP
                else f"references non-existent secret key: {key}",
                volume=name,
            )
        mode = item.get("mode")
        files.append(
            DownwardFile(path=path, content=data[key], mode=mode if isinstance(mode, int) else None)
        )
    return tuple(files)
