"""Turn a manifest document into a static pod exactly as upstream's file source does.

Upstream (``pkg/kubelet/config/common.go``, ``applyDefaults``): the UID, when the manifest has
none, is the md5 of the pod object followed by ``host:<nodeName>`` and ``file:<path>``; the name
becomes ``<name>-<nodeName>``; the namespace defaults to ``default``; ``spec.nodeName`` is set;
annotation ``kubernetes.io/config.hash`` holds the UID, ``kubernetes.io/config.source`` is
``file`` and ``kubernetes.io/config.seen`` the first-seen time (RFC3339Nano); a toleration
``{operator: Exists, effect: NoExecute}`` is added. Go hashes its in-memory struct (spew), which
Python cannot reproduce, so we hash the canonical JSON of the document instead: UIDs are stable
and change exactly when the manifest, the node name or the path changes, but differ from Go's.
"""

from __future__ import annotations

import copy
import datetime as _dt
import hashlib
import json
from collections.abc import Mapping
from typing import Any

from pykubelet.api import Pod, canonical_quantity
from pykubelet.core.errors import InvalidInput

__all__ = [
    "CONFIG_HASH",
    "CONFIG_MIRROR",
    "CONFIG_SEEN",
    "CONFIG_SOURCE",
    "static_pod_from_document",
    "static_pod_uid",
]

CONFIG_SOURCE = "kubernetes.io/config.source"
CONFIG_HASH = "kubernetes.io/config.hash"
CONFIG_SEEN = "kubernetes.io/config.seen"
CONFIG_MIRROR = "kubernetes.io/config.mirror"  # set on mirror pods in node mode only

_NO_EXECUTE = {"operator": "Exists", "effect": "NoExecute"}
_PROBE_DEFAULTS = (
    ("timeoutSeconds", 1),
    ("periodSeconds", 10),
    ("successThreshold", 1),
    ("failureThreshold", 3),
)


def static_pod_uid(document: Mapping[str, Any], node_name: str, path: str) -> str:
    h = hashlib.md5(usedforsecurity=False)
    h.update(json.dumps(document, sort_keys=True, separators=(",", ":")).encode())
    h.update(f"host:{node_name}".encode())
    h.update(f"file:{path}".encode())
    return h.hexdigest()


def _rfc3339nano(ts: float) -> str:
    dt = _dt.datetime.fromtimestamp(ts, tz=_dt.UTC)
    frac = f"{dt.microsecond * 1000:09d}".rstrip("0")
    return dt.strftime("%Y-%m-%dT%H:%M:%S") + (f".{frac}" if frac else "") + "Z"


def _default_handler(handler: Any) -> None:
    """``SetDefaults_HTTPGetAction``: path ``/``, scheme ``HTTP``."""
    if isinstance(handler, dict) and isinstance(handler.get("httpGet"), dict):
        handler["httpGet"].setdefault("path", "/")
        handler["httpGet"].setdefault("scheme", "HTTP")


def _default_probe(probe: Any) -> None:
    """``SetDefaults_Probe``: timeout 1 s, period 10 s, thresholds 1 and 3."""
    if not isinstance(probe, dict):
        return
    _default_handler(probe)
    for key, value in _PROBE_DEFAULTS:
        if not probe.get(key):
            probe[key] = value


def _default_field_ref(ref: Any) -> None:
    """``SetDefaults_ObjectFieldSelector``: apiVersion ``v1``."""
    if isinstance(ref, dict) and not ref.get("apiVersion"):
        ref["apiVersion"] = "v1"


def _canonical(value: Any) -> Any:
    """A quantity as the API writes it back (``0.5`` → ``500m``, a number → a string); a bad
    one is left for validation to report with its field."""
    try:
        return canonical_quantity(value)
    except InvalidInput:
        return value


def _canonical_values(values: Any) -> None:
    if isinstance(values, dict):
        for name in values:
            values[name] = _canonical(values[name])


def _canonical_divisor(ref: Any) -> None:
    if isinstance(ref, dict) and "divisor" in ref:
        ref["divisor"] = _canonical(ref["divisor"])


def _default_volume(volume: dict[str, Any]) -> None:
    """``SetDefaults_HostPathVolumeSource`` (type ``""``), ``defaultMode`` 0644 (420) of the
    secret, configMap, downwardAPI and projected sources, ``fieldRef.apiVersion`` in items."""
    if isinstance(volume.get("hostPath"), dict):
        volume["hostPath"].setdefault("type", "")
    if isinstance(volume.get("emptyDir"), dict) and "sizeLimit" in volume["emptyDir"]:
        volume["emptyDir"]["sizeLimit"] = _canonical(volume["emptyDir"]["sizeLimit"])
    for kind in ("secret", "configMap", "downwardAPI", "projected"):
        source = volume.get(kind)
        if isinstance(source, dict):
            source.setdefault("defaultMode", 420)
    downward = volume.get("downwardAPI")
    for item in downward.get("items") or [] if isinstance(downward, dict) else ():
        if isinstance(item, dict):
            _default_field_ref(item.get("fieldRef"))
            _canonical_divisor(item.get("resourceFieldRef"))


def _default_spec(spec: dict[str, Any]) -> None:
    """The v1 scheme defaults the kubelet shows on static pods."""
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("securityContext", {})
    spec.setdefault("schedulerName", "default-scheduler")
    spec.setdefault("enableServiceLinks", True)
    for key in ("initContainers", "containers"):
        for c in spec.get(key) or []:
            if not isinstance(c, dict):
                continue
            c.setdefault("terminationMessagePath", "/dev/termination-log")
            c.setdefault("terminationMessagePolicy", "File")
            resources = c.setdefault("resources", {})
            limits = resources.get("limits") if isinstance(resources, dict) else None
            if isinstance(limits, dict) and limits:
                # SetDefaults_Pod: a limit without a request is also the request
                requests = resources.setdefault("requests", {})
                if isinstance(requests, dict):
                    for name, value in limits.items():
                        requests.setdefault(name, value)
            for kind in ("limits", "requests"):
                _canonical_values(resources.get(kind) if isinstance(resources, dict) else None)
            for port in c.get("ports") or []:
                if isinstance(port, dict):
                    port.setdefault("protocol", "TCP")
                    if spec.get("hostNetwork") is True and not port.get("hostPort"):
                        port["hostPort"] = port.get("containerPort")
            for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
                _default_probe(c.get(probe))
            lifecycle = c.get("lifecycle")
            for hook in lifecycle.values() if isinstance(lifecycle, dict) else ():
                _default_handler(hook)
            for env in c.get("env") or []:
                if isinstance(env, dict) and isinstance(env.get("valueFrom"), dict):
                    _default_field_ref(env["valueFrom"].get("fieldRef"))
                    _canonical_divisor(env["valueFrom"].get("resourceFieldRef"))
            image = c.get("image")
            if "imagePullPolicy" not in c and isinstance(image, str):
                tagged = ":" in image.rsplit("/", 1)[-1] and not image.endswith(":latest")
                c["imagePullPolicy"] = "IfNotPresent" if tagged or "@" in image else "Always"
    for volume in spec.get("volumes") or []:
        if isinstance(volume, dict):
            _default_volume(volume)
    _canonical_values(spec.get("overhead"))
    tolerations = spec.setdefault("tolerations", [])
    if isinstance(tolerations, list) and _NO_EXECUTE not in tolerations:
        tolerations.append(dict(_NO_EXECUTE))


def static_pod_from_document(document: Any, *, path: str, node_name: str, seen_at: float) -> Pod:
    """Validate a manifest and apply the static-pod defaults; ``InvalidInput`` names the field."""
    if not isinstance(document, dict):
        raise InvalidInput("expected a Pod object", field="<document>")
    Pod.from_dict(document)  # validate as written, so errors name the user's fields
    raw = copy.deepcopy(document)
    md = raw.setdefault("metadata", {})
    uid = md.get("uid") or static_pod_uid(document, node_name, path)
    name = f"{md['name']}-{node_name.lower()}"
    namespace = md.get("namespace") or "default"
    md.update(
        name=name,
        namespace=namespace,
        uid=uid,
        selfLink=f"/api/v1/namespaces/{namespace}/pods/{name}",
    )
    annotations = dict(md.get("annotations") or {})
    annotations[CONFIG_HASH] = uid
    annotations[CONFIG_SOURCE] = "file"
    annotations.setdefault(CONFIG_SEEN, _rfc3339nano(seen_at))
    md["annotations"] = annotations
    spec = raw.setdefault("spec", {})
    spec["nodeName"] = node_name
    _default_spec(spec)
    raw["status"] = {"phase": "Pending"}
    return Pod.from_dict(raw)
