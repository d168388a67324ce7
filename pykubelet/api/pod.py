"""A validated, frozen view of a v1 Pod; the raw document is kept for faithful round trips.

``Pod.from_dict`` checks what the node relies on and raises ``InvalidInput`` naming the field
(``spec.containers[1].image``). Sub-objects the node layer interprets later (probes, lifecycle,
volumes, securityContext, env) are kept as raw mappings here and parsed where they are used.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from pykubelet.api.key_order import in_go_order
from pykubelet.api.ports import check_host_port_conflicts, container_ports
from pykubelet.api.status import PodStatus
from pykubelet.core.errors import InvalidInput

__all__ = ["Container", "ObjectMeta", "Pod", "PodSpec", "pods_to_list"]

RawObject = Mapping[str, Any]

# Names are checked with fullmatch: ``$`` would also match before a trailing newline.
_DNS1123_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_DNS1123_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_RESTART_POLICIES = ("Always", "OnFailure", "Never")


def _expect(value: Any, kind: type | tuple[type, ...], path: str) -> Any:
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        names = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        raise InvalidInput(f"expected {_json_kind(names)}, got {type(value).__name__}", field=path)
    return value


def _string_keys(value: Any) -> None:
    """Every mapping key is a string, as in JSON (a YAML manifest may say ``1: x``; found by
    bench/bench_fuzz.py, it made the key ordering raise TypeError). Iterative: no depth limit."""
    todo: list[tuple[Any, str]] = [(value, "")]
    while todo:
        item, path = todo.pop()
        if isinstance(item, dict):
            for k, v in item.items():
                if not isinstance(k, str):
                    raise InvalidInput(
                        f"map key {k!r} is a {_json_kind(type(k).__name__)}, must be a string",
                        field=path or "<document>",
                    )
                todo.append((v, f"{path}.{k}" if path else k))
        elif isinstance(item, list):
            todo.extend((v, f"{path}[{i}]") for i, v in enumerate(item))


def _json_kind(py: str) -> str:
    return {
        "str": "string",
        "int": "integer",
        "dict": "object",
        "list": "array",
        "bool": "boolean",
    }.get(py, py)


def _opt(obj: RawObject, key: str, kind: type | tuple[type, ...], path: str, default: Any) -> Any:
    if key not in obj or obj[key] is None:
        return default
    return _expect(obj[key], kind, f"{path}.{key}" if path else key)


def _str_list(obj: RawObject, key: str, path: str) -> tuple[str, ...]:
    items = _opt(obj, key, list, path, [])
    for i, item in enumerate(items):
        _expect(item, str, f"{path}.{key}[{i}]")
    return tuple(items)


def _str_map(obj: RawObject, key: str, path: str) -> dict[str, str]:
    m = _opt(obj, key, dict, path, {})
    for k, v in m.items():
        _expect(v, str, f"{path}.{key}[{k}]")
    return dict(m)


@dataclass(frozen=True, slots=True, kw_only=True)
class ObjectMeta:
    name: str
    namespace: str = "default"
    uid: str = ""
    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)
    creation_timestamp: str = ""
    # set by the API server when the pod is being deleted gracefully (node mode)
    deletion_timestamp: str = ""
    deletion_grace_period_s: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Container:
    name: str
    image: str
    command: tuple[str, ...] = ()
    args: tuple[str, ...] = ()
    working_dir: str = ""
    env: tuple[RawObject, ...] = ()
    ports: tuple[RawObject, ...] = ()
    resources: RawObject = field(default_factory=dict)
    volume_mounts: tuple[RawObject, ...] = ()
    liveness_probe: RawObject | None = None
    readiness_probe: RawObject | None = None
    startup_probe: RawObject | None = None
    lifecycle: RawObject | None = None
    security_context: RawObject | None = None
    image_pull_policy: str = "IfNotPresent"
    termination_message_path: str = "/dev/termination-log"
    termination_message_policy: str = "File"
    stdin: bool = False
    stdin_once: bool = False
    tty: bool = False
    restart_policy: str = ""  # sidecar init containers ("Always")

    @property
    def is_sidecar(self) -> bool:
        """An init container with ``restartPolicy: Always`` (upstream 1.29 sidecars): started
        in order but not waited for, restarted whenever it exits, stopped after the app
        containers."""
        return self.restart_policy == "Always"

    @classmethod
    def from_dict(cls, obj: Any, path: str) -> Container:
        _expect(obj, dict, path)
        name = _opt(obj, "name", str, path, "")
        if not name:
            raise InvalidInput("Required value", field=f"{path}.name")
        if not _DNS1123_LABEL.fullmatch(name) or len(name) > 63:
            raise InvalidInput(
                f"invalid container name {name!r} (DNS-1123 label)", field=f"{path}.name"
            )
        image = _opt(obj, "image", str, path, "")
        if not image:
            raise InvalidInput("Required value", field=f"{path}.image")
        policy = _opt(obj, "imagePullPolicy", str, path, "")
        if policy and policy not in ("Always", "IfNotPresent", "Never"):
            raise InvalidInput(f"unsupported value {policy!r}", field=f"{path}.imagePullPolicy")
        if not policy:
            policy = (
                "Always"
                if image.endswith(":latest") or ":" not in image.rsplit("/", 1)[-1]
                else "IfNotPresent"
            )
        env = _opt(obj, "env", list, path, [])
        for i, e in enumerate(env):
            _expect(e, dict, f"{path}.env[{i}]")
            if not isinstance(e.get("name"), str) or not e["name"]:
                raise InvalidInput("Required value", field=f"{path}.env[{i}].name")
        return cls(
            name=name,
            image=image,
            command=_str_list(obj, "command", path),
            args=_str_list(obj, "args", path),
            working_dir=_opt(obj, "workingDir", str, path, ""),
            env=tuple(env),
            ports=tuple(_opt(obj, "ports", list, path, [])),
            resources=_opt(obj, "resources", dict, path, {}),
            volume_mounts=tuple(_opt(obj, "volumeMounts", list, path, [])),
            liveness_probe=_opt(obj, "livenessProbe", dict, path, None),
            readiness_probe=_opt(obj, "readinessProbe", dict, path, None),
            startup_probe=_opt(obj, "startupProbe", dict, path, None),
            lifecycle=_opt(obj, "lifecycle", dict, path, None),
            security_context=_opt(obj, "securityContext", dict, path, None),
            image_pull_policy=policy,
            termination_message_path=_opt(
                obj, "terminationMessagePath", str, path, "/dev/termination-log"
            ),
            termination_message_policy=_opt(obj, "terminationMessagePolicy", str, path, "File"),
            stdin=_opt(obj, "stdin", bool, path, False),
            stdin_once=_opt(obj, "stdinOnce", bool, path, False),
            tty=_opt(obj, "tty", bool, path, False),
            restart_policy=_opt(obj, "restartPolicy", str, path, ""),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class PodSpec:
    containers: tuple[Container, ...]
    init_containers: tuple[Container, ...] = ()
    restart_policy: str = "Always"
    termination_grace_period_s: float = 30.0
    active_deadline_s: float | None = None
    host_network: bool = False
    host_pid: bool = False
    host_ipc: bool = False
    share_process_namespace: bool = False
    node_name: str = ""
    hostname: str = ""
    service_account_name: str = ""
    image_pull_secrets: tuple[str, ...] = ()  # names of the pod's imagePullSecrets
    volumes: tuple[RawObject, ...] = ()
    security_context: RawObject = field(default_factory=dict)

    @classmethod
    def from_dict(cls, obj: Any, path: str = "spec") -> PodSpec:
        _expect(obj, dict, path)
        raw_containers = _opt(obj, "containers", list, path, [])
        if not raw_containers:
            raise InvalidInput("Required value: at least one container", field=f"{path}.containers")
        containers = tuple(
            Container.from_dict(c, f"{path}.containers[{i}]") for i, c in enumerate(raw_containers)
        )
        init = tuple(
            Container.from_dict(c, f"{path}.initContainers[{i}]")
            for i, c in enumerate(_opt(obj, "initContainers", list, path, []))
        )
        seen: set[str] = set()
        for kind, group in (("initContainers", init), ("containers", containers)):
            for i, c in enumerate(group):
                if c.name in seen:
                    raise InvalidInput(
                        f"Duplicate value: {c.name!r}", field=f"{path}.{kind}[{i}].name"
                    )
                seen.add(c.name)
        host_network = _opt(obj, "hostNetwork", bool, path, False)
        for kind, group in (("initContainers", init), ("containers", containers)):
            parsed = [
                (
                    f"{path}.{kind}[{i}]",
                    container_ports(c.ports, f"{path}.{kind}[{i}]", host_network=host_network),
                )
                for i, c in enumerate(group)
            ]
            if kind == "containers":
                check_host_port_conflicts(parsed)
        for kind, group in (("initContainers", init), ("containers", containers)):
            for i, c in enumerate(group):
                allowed = ("", "Always") if kind == "initContainers" else ("",)
                if c.restart_policy not in allowed:
                    raise InvalidInput(
                        f"Unsupported value: {c.restart_policy!r}"
                        + (": supported values: 'Always'" if kind == "initContainers" else ""),
                        field=f"{path}.{kind}[{i}].restartPolicy",
                    )
        policy = _opt(obj, "restartPolicy", str, path, "Always")
        if policy not in _RESTART_POLICIES:
            raise InvalidInput(
                f"Unsupported value: {policy!r}: supported values: "
                + ", ".join(map(repr, _RESTART_POLICIES)),
                field=f"{path}.restartPolicy",
            )
        grace = _opt(obj, "terminationGracePeriodSeconds", int, path, 30)
        if grace < 0:
            raise InvalidInput(
                "must be greater than or equal to 0", field=f"{path}.terminationGracePeriodSeconds"
            )
        deadline = _opt(obj, "activeDeadlineSeconds", int, path, None)
        if deadline is not None and deadline <= 0:
            raise InvalidInput("must be greater than 0", field=f"{path}.activeDeadlineSeconds")
        return cls(
            containers=containers,
            init_containers=init,
            restart_policy=policy,
            termination_grace_period_s=float(grace),
            active_deadline_s=float(deadline) if deadline is not None else None,
            host_network=host_network,
            host_pid=_opt(obj, "hostPID", bool, path, False),
            host_ipc=_opt(obj, "hostIPC", bool, path, False),
            share_process_namespace=_opt(obj, "shareProcessNamespace", bool, path, False),
            node_name=_opt(obj, "nodeName", str, path, ""),
            hostname=_opt(obj, "hostname", str, path, ""),
            service_account_name=_opt(obj, "serviceAccountName", str, path, ""),
            image_pull_secrets=_pull_secret_names(obj, path),
            volumes=tuple(_opt(obj, "volumes", list, path, [])),
            security_context=_opt(obj, "securityContext", dict, path, {}),
        )

    def all_containers(self) -> tuple[Container, ...]:
        return (*self.init_containers, *self.containers)

    def is_init(self, name: str) -> bool:
        return any(c.name == name for c in self.init_containers)

    def container(self, name: str) -> Container | None:
        for c in self.all_containers():
            if c.name == name:
                return c
        return None


@dataclass(frozen=True, slots=True, kw_only=True)
class Pod:
    """A desired pod plus, when known, its latest status (set by the status manager)."""

    meta: ObjectMeta
    spec: PodSpec
    raw: RawObject
    status: PodStatus | None = None

    @property
    def uid(self) -> str:
        return self.meta.uid

    @property
    def full_name(self) -> str:
        """``namespace/name (uid)``, as logs name pods."""
        return f"{self.meta.namespace}/{self.meta.name} ({self.meta.uid})"

    @classmethod
    def from_dict(cls, obj: Any) -> Pod:
        _expect(obj, dict, "<document>")
        _string_keys(obj)
        kind = obj.get("kind", "Pod")
        if kind != "Pod":
            raise InvalidInput(f"expected kind Pod, got {kind!r}", field="kind")
        api_version = obj.get("apiVersion", "v1")
        if api_version != "v1":
            raise InvalidInput(f"expected apiVersion v1, got {api_version!r}", field="apiVersion")
        md = _expect(obj.get("metadata"), dict, "metadata")
        name = _opt(md, "name", str, "metadata", "")
        if not name:
            raise InvalidInput("Required value: name", field="metadata.name")
        if not _DNS1123_SUBDOMAIN.fullmatch(name) or len(name) > 253:
            raise InvalidInput(f"invalid name {name!r} (DNS-1123 subdomain)", field="metadata.name")
        namespace = _opt(md, "namespace", str, "metadata", "") or "default"
        if not _DNS1123_LABEL.fullmatch(namespace) or len(namespace) > 63:
            raise InvalidInput(f"invalid namespace {namespace!r}", field="metadata.namespace")
        meta = ObjectMeta(
            name=name,
            namespace=namespace,
            uid=_opt(md, "uid", str, "metadata", ""),
            labels=_str_map(md, "labels", "metadata"),
            annotations=_str_map(md, "annotations", "metadata"),
            creation_timestamp=_opt(md, "creationTimestamp", str, "metadata", ""),
            deletion_timestamp=_opt(md, "deletionTimestamp", str, "metadata", "") or "",
            deletion_grace_period_s=_opt(md, "deletionGracePeriodSeconds", int, "metadata", None),
        )
        spec = PodSpec.from_dict(obj.get("spec"), "spec")
        raw = copy.deepcopy(dict(obj))
        # Go's key order once here, not on every /pods encode (the spec never changes)
        raw["spec"] = in_go_order(raw.get("spec") or {}, "PodSpec")
        return cls(meta=meta, spec=spec, raw=raw)

    def with_status(self, status: PodStatus | None) -> Pod:
        return replace(self, status=status)

    def to_dict(self) -> dict[str, Any]:
        """The v1 Pod as the kubelet serves it in /pods: the raw object, metadata as the node
        sees it, and the latest status. No per-item kind/apiVersion (PodList items omit them)."""
        out: dict[str, Any] = {}
        md = dict(self.raw.get("metadata") or {})
        md["name"] = self.meta.name
        md["namespace"] = self.meta.namespace
        md["uid"] = self.meta.uid
        if self.meta.creation_timestamp:
            md["creationTimestamp"] = self.meta.creation_timestamp
        else:
            md.setdefault("creationTimestamp", None)
        if self.meta.labels:
            md["labels"] = dict(self.meta.labels)
        if self.meta.annotations:
            md["annotations"] = dict(self.meta.annotations)
        # Keys in Go's order (struct fields as declared, map keys sorted), whatever order the
        # manifest used: upstream's /pods is written by encoding/json. The spec was put in
        # that order by from_dict.
        out["metadata"] = in_go_order(md, "ObjectMeta")
        out["spec"] = dict(self.raw.get("spec") or {})
        out["status"] = self.status.to_dict() if self.status is not None else {}
        return out


def pods_to_list(pods: Sequence[Pod]) -> dict[str, Any]:
    """A v1 PodList envelope; ``items`` is null when empty, exactly as the kubelet writes it."""
    return {
        "kind": "PodList",
        "apiVersion": "v1",
        "metadata": {},
        "items": [p.to_dict() for p in pods] if pods else None,
    }


def _pull_secret_names(obj: dict[str, Any], path: str) -> tuple[str, ...]:
    refs = _opt(obj, "imagePullSecrets", list, path, [])
    names = []
    for i, ref in enumerate(refs):
        _expect(ref, dict, f"{path}.imagePullSecrets[{i}]")
        name = _opt(ref, "name", str, f"{path}.imagePullSecrets[{i}]", "")
        if name:
            names.append(name)
    return tuple(names)
