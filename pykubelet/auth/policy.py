"""The ``Policy`` authorizer: Kubernetes RBAC objects from a local YAML file, evaluated like RBAC.

The file holds ``ClusterRole`` and ``ClusterRoleBinding`` objects (``rbac.authorization.k8s.io/v1``;
also inside a ``kind: List``). A request is allowed when any binding whose subjects include the
user (``User``, ``Group``, ``ServiceAccount``) points at a role with a rule matching it: the API
group ``""``, the resource ``nodes/<subresource>`` (or ``nodes/*``, ``*/<subresource>``, ``*``),
the verb (or ``*``) and, when ``resourceNames`` is set, the node name. There are no deny rules;
anything not granted is "no opinion" (403). A bad file is refused at start with a message that
names the document and the field.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from pykubelet.auth.errors import PolicyFileError
from pykubelet.auth.types import Attributes, AuthorizationResult, Decision, UserInfo

__all__ = [
    "DEFAULT_POLICY_YAML",
    "PolicyAuthorizer",
    "PolicyRule",
    "load_policy",
    "parse_policy",
]

RBAC_API = "rbac.authorization.k8s.io/v1"

DEFAULT_POLICY_YAML = """\
# pykubelet's default standalone policy: members of system:masters may do everything on this
# node's API; nobody else may do anything.
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: pykubelet:admin
rules:
- apiGroups: [""]
  resources: ["nodes", "nodes/*"]
  verbs: ["*"]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: pykubelet:admin:system:masters
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: ClusterRole
  name: pykubelet:admin
subjects:
- apiGroup: rbac.authorization.k8s.io
  kind: Group
  name: system:masters
"""


@dataclass(frozen=True, slots=True, kw_only=True)
class PolicyRule:
    api_groups: frozenset[str]
    resources: frozenset[str]
    verbs: frozenset[str]
    resource_names: frozenset[str] = frozenset()

    def matches(self, attrs: Attributes) -> bool:
        if "*" not in self.api_groups and attrs.api_group not in self.api_groups:
            return False
        if "*" not in self.verbs and attrs.verb not in self.verbs:
            return False
        if self.resource_names and attrs.name not in self.resource_names:
            return False
        return _resource_matches(self.resources, attrs.resource, attrs.subresource)


def _resource_matches(resources: frozenset[str], resource: str, subresource: str) -> bool:
    # Upstream RBAC's ResourceMatches: "*" is everything, "r" only the resource itself,
    # "r/s" exactly that subresource, "r/*" any subresource of r, "*/s" s of any resource.
    if "*" in resources:
        return True
    if not subresource:
        return resource in resources
    return bool({f"{resource}/{subresource}", f"{resource}/*", f"*/{subresource}"} & resources)


@dataclass(frozen=True, slots=True, kw_only=True)
class _Subject:
    kind: str
    name: str
    namespace: str = ""

    def applies_to(self, user: UserInfo) -> bool:
        if self.kind == "User":
            return user.name == self.name
        if self.kind == "Group":
            return self.name in user.groups
        return user.name == f"system:serviceaccount:{self.namespace}:{self.name}"

    def describe(self) -> str:
        if self.kind == "ServiceAccount":
            return f'ServiceAccount "{self.namespace}/{self.name}"'
        return f'{self.kind} "{self.name}"'


@dataclass(frozen=True, slots=True, kw_only=True)
class _Binding:
    name: str
    role: str
    subjects: tuple[_Subject, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class Policy:
    roles: Mapping[str, tuple[PolicyRule, ...]]
    bindings: tuple[_Binding, ...]


class _Doc:
    """Field access that names the document and the field path in every error."""

    def __init__(self, where: str) -> None:
        self.where = where

    def fail(self, field: str, message: str) -> PolicyFileError:
        return PolicyFileError(f"{self.where}: {field}: {message}", field=field)

    def string(self, obj: Mapping[str, Any], key: str, field: str, *, required: bool) -> str:
        value = obj.get(key)
        if value is None or value == "":
            if required:
                raise self.fail(field, "is required")
            return ""
        if not isinstance(value, str):
            raise self.fail(field, f"must be a string, got {type(value).__name__}")
        return value

    def strings(self, obj: Mapping[str, Any], key: str, field: str) -> frozenset[str]:
        value = obj.get(key)
        if value is None:
            return frozenset()
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self.fail(field, "must be a list of strings")
        return frozenset(value)

    def mapping(self, value: Any, field: str) -> Mapping[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(field, "must be a mapping")
        return value


def _parse_role(doc: _Doc, obj: Mapping[str, Any]) -> tuple[str, tuple[PolicyRule, ...]]:
    meta = doc.mapping(obj.get("metadata"), "metadata")
    name = doc.string(meta, "name", "metadata.name", required=True)
    if obj.get("aggregationRule") is not None:
        raise doc.fail("aggregationRule", "is not supported in a local policy file")
    raw_rules = obj.get("rules") or []
    if not isinstance(raw_rules, list):
        raise doc.fail("rules", "must be a list")
    rules = []
    for i, raw in enumerate(raw_rules):
        f = f"rules[{i}]"
        rule = doc.mapping(raw, f)
        unknown = set(rule) - _RULE_FIELDS
        if unknown:
            raise doc.fail(f"{f}.{sorted(unknown)[0]}", "unknown field")
        verbs = doc.strings(rule, "verbs", f"{f}.verbs")
        if not verbs:
            raise doc.fail(f"{f}.verbs", "must name at least one verb")
        if rule.get("nonResourceURLs") is not None:
            # The kubelet API is authorized as resource requests only: such a rule can never
            # match, and silently accepting it would suggest it grants something.
            raise doc.fail(f"{f}.nonResourceURLs", "is not used by the kubelet API; use nodes/*")
        resources = doc.strings(rule, "resources", f"{f}.resources")
        if not resources:
            raise doc.fail(f"{f}.resources", "must name at least one resource")
        rules.append(
            PolicyRule(
                api_groups=doc.strings(rule, "apiGroups", f"{f}.apiGroups"),
                resources=resources,
                verbs=verbs,
                resource_names=doc.strings(rule, "resourceNames", f"{f}.resourceNames"),
            )
        )
    return name, tuple(rules)


_SUBJECT_KINDS = ("User", "Group", "ServiceAccount")
_RULE_FIELDS = frozenset({"apiGroups", "resources", "verbs", "resourceNames", "nonResourceURLs"})


def _parse_binding(doc: _Doc, obj: Mapping[str, Any]) -> _Binding:
    meta = doc.mapping(obj.get("metadata"), "metadata")
    name = doc.string(meta, "name", "metadata.name", required=True)
    ref = doc.mapping(obj.get("roleRef"), "roleRef")
    if doc.string(ref, "kind", "roleRef.kind", required=True) != "ClusterRole":
        raise doc.fail("roleRef.kind", "must be ClusterRole")
    group = doc.string(ref, "apiGroup", "roleRef.apiGroup", required=False)
    if group not in ("", "rbac.authorization.k8s.io"):
        raise doc.fail("roleRef.apiGroup", "must be rbac.authorization.k8s.io")
    role = doc.string(ref, "name", "roleRef.name", required=True)
    raw_subjects = obj.get("subjects") or []
    if not isinstance(raw_subjects, list):
        raise doc.fail("subjects", "must be a list")
    subjects = []
    for i, raw in enumerate(raw_subjects):
        f = f"subjects[{i}]"
        s = doc.mapping(raw, f)
        kind = doc.string(s, "kind", f"{f}.kind", required=True)
        if kind not in _SUBJECT_KINDS:
            raise doc.fail(f"{f}.kind", f"must be one of {', '.join(_SUBJECT_KINDS)}, got {kind!r}")
        namespace = doc.string(s, "namespace", f"{f}.namespace", required=kind == "ServiceAccount")
        subjects.append(
            _Subject(
                kind=kind,
                name=doc.string(s, "name", f"{f}.name", required=True),
                namespace=namespace,
            )
        )
    return _Binding(name=name, role=role, subjects=tuple(subjects))


def _objects(documents: Iterable[Any], source: str) -> Iterable[tuple[_Doc, Mapping[str, Any]]]:
    for d, obj in enumerate(documents, start=1):
        if obj is None:
            continue
        doc = _Doc(f"{source}, document {d}")
        obj = doc.mapping(obj, "(document)")
        if obj.get("kind") == "List":
            items = obj.get("items") or []
            if not isinstance(items, list):
                raise doc.fail("items", "must be a list")
            for i, item in enumerate(items):
                yield _Doc(f"{source}, document {d}, items[{i}]"), doc.mapping(item, f"items[{i}]")
        else:
            yield doc, obj


def parse_policy(text: str, *, source: str = "policy") -> Policy:
    try:
        documents = list(yaml.safe_load_all(text))
    except yaml.YAMLError as exc:
        raise PolicyFileError(f"{source}: not valid YAML: {exc}", field="policy") from exc
    roles: dict[str, tuple[PolicyRule, ...]] = {}
    bindings: list[tuple[_Doc, _Binding]] = []
    for doc, obj in _objects(documents, source):
        kind = doc.string(obj, "kind", "kind", required=True)
        if kind not in ("ClusterRole", "ClusterRoleBinding"):
            raise doc.fail("kind", f"must be ClusterRole or ClusterRoleBinding, got {kind!r}")
        api = doc.string(obj, "apiVersion", "apiVersion", required=True)
        if api != RBAC_API:
            raise doc.fail("apiVersion", f"must be {RBAC_API}, got {api!r}")
        if kind == "ClusterRole":
            name, rules = _parse_role(doc, obj)
            if name in roles:
                raise doc.fail("metadata.name", f"ClusterRole {name!r} is defined twice")
            roles[name] = rules
        else:
            bindings.append((doc, _parse_binding(doc, obj)))
    for doc, binding in bindings:
        if binding.role not in roles:
            raise doc.fail("roleRef.name", f"ClusterRole {binding.role!r} is not in the file")
    return Policy(roles=roles, bindings=tuple(b for _, b in bindings))


def load_policy(path: str | os.PathLike[str]) -> Policy:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise PolicyFileError(f"cannot read policy file {path}: {exc}", field="policy") from exc
    return parse_policy(text, source=str(path))


class PolicyAuthorizer:
    """The ``Policy`` authorization mode. ``PolicyAuthorizer.default()`` is the standalone
    default: everything to group ``system:masters``, nothing to anyone else."""

    # Decisions by everything a rule or a subject can look at (never the path or the user's
    # uid and extra); the policy never changes after construction, so entries never go stale.
    # Bounded: a flood of distinct user names only clears the cache.
    _CACHE_MAX = 4096

    def __init__(self, policy: Policy) -> None:
        self._policy = policy
        self._decisions: dict[tuple[object, ...], AuthorizationResult] = {}

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> PolicyAuthorizer:
        return cls(load_policy(path))

    @classmethod
    def default(cls) -> PolicyAuthorizer:
        return cls(parse_policy(DEFAULT_POLICY_YAML, source="built-in default policy"))

    async def authorize(self, attrs: Attributes) -> AuthorizationResult:
        user = attrs.user
        key = (
            user.name,
            user.groups,
            attrs.verb,
            attrs.subresource,
            attrs.name,
            attrs.resource,
            attrs.api_group,
        )
        result = self._decisions.get(key)
        if result is None:
            result = self.evaluate(attrs)
            if len(self._decisions) >= self._CACHE_MAX:
                self._decisions.clear()
            self._decisions[key] = result
        return result

    def evaluate(self, attrs: Attributes) -> AuthorizationResult:
        for binding in self._policy.bindings:
            subject = next((s for s in binding.subjects if s.applies_to(attrs.user)), None)
            if subject is None:
                continue
            if any(rule.matches(attrs) for rule in self._policy.roles[binding.role]):
                return AuthorizationResult(
                    decision=Decision.ALLOW,
                    reason=(
                        f'RBAC: allowed by ClusterRoleBinding "{binding.name}" of ClusterRole '
                        f'"{binding.role}" to {subject.describe()}'
                    ),
                )
        return AuthorizationResult(decision=Decision.NO_OPINION, reason="")
