"""The Policy authorizer: RBAC objects from YAML, evaluated like RBAC."""

from __future__ import annotations

from pathlib import Path

import pytest

from pykubelet.auth.errors import PolicyFileError
from pykubelet.auth.policy import PolicyAuthorizer, parse_policy
from pykubelet.auth.types import Attributes, Decision, UserInfo

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "policy.yaml"

POLICY = """\
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: stats-reader}
rules:
- apiGroups: [""]
  resources: ["nodes/stats", "nodes/metrics"]
  verbs: ["get"]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: List
items:
- apiVersion: rbac.authorization.k8s.io/v1
  kind: ClusterRole
  metadata: {name: exec-on-node-1}
  rules:
  - apiGroups: [""]
    resources: ["nodes/proxy"]
    verbs: ["create"]
    resourceNames: ["node-1"]
- apiVersion: rbac.authorization.k8s.io/v1
  kind: ClusterRole
  metadata: {name: any-subresource-read}
  rules:
  - apiGroups: ["*"]
    resources: ["*/pods", "*/healthz"]
    verbs: ["get", "list"]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: monitoring}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: stats-reader}
subjects:
- {kind: User, name: prometheus}
- {kind: Group, name: monitoring}
- {kind: ServiceAccount, name: metrics, namespace: kube-system}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: debuggers}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: exec-on-node-1}
subjects: [{kind: User, name: dana}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: pod-readers}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: any-subresource-read}
subjects: [{kind: Group, name: readers}]
"""


def ask(
    authz: PolicyAuthorizer,
    user: UserInfo,
    verb: str,
    sub: str,
    node: str = "node-1",
) -> Decision:
    a = Attributes(user=user, verb=verb, name=node, subresource=sub, path="/x")
    return authz.evaluate(a).decision


ALLOW, NO = Decision.ALLOW, Decision.NO_OPINION


def test_rbac_matching() -> None:
    authz = PolicyAuthorizer(parse_policy(POLICY))
    prom = UserInfo(name="prometheus")
    assert ask(authz, prom, "get", "stats") is ALLOW
    assert ask(authz, prom, "get", "metrics") is ALLOW
    assert ask(authz, prom, "create", "stats") is NO  # verb not granted
    assert ask(authz, prom, "get", "proxy") is NO
    assert ask(authz, prom, "", "stats") is NO  # HEAD: empty verb matches only "*"
    assert ask(authz, UserInfo(name="x", groups=("monitoring",)), "get", "stats") is ALLOW
    sa = UserInfo(name="system:serviceaccount:kube-system:metrics")
    assert ask(authz, sa, "get", "metrics") is ALLOW
    assert ask(authz, UserInfo(name="system:serviceaccount:default:metrics"), "get", "stats") is NO
    dana = UserInfo(name="dana")
    assert ask(authz, dana, "create", "proxy") is ALLOW
    assert ask(authz, dana, "create", "proxy", node="node-2") is NO  # resourceNames
    assert ask(authz, dana, "get", "proxy") is NO
    reader = UserInfo(name="r", groups=("readers",))
    assert ask(authz, reader, "get", "pods") is ALLOW
    assert ask(authz, reader, "get", "healthz") is ALLOW
    assert ask(authz, reader, "get", "configz") is NO
    assert ask(authz, UserInfo(name="Prometheus"), "get", "stats") is NO  # names are exact


def test_reason_names_binding_role_and_subject() -> None:
    authz = PolicyAuthorizer(parse_policy(POLICY))
    a = Attributes(user=UserInfo(name="prometheus"), verb="get", name="n", subresource="stats",
                   path="/stats")  # fmt: skip
    assert authz.evaluate(a).reason == (
        'RBAC: allowed by ClusterRoleBinding "monitoring" of ClusterRole "stats-reader" '
        'to User "prometheus"'
    )


@pytest.mark.parametrize("authz", [PolicyAuthorizer.default(), PolicyAuthorizer.from_file(EXAMPLE)])
def test_default_policy_is_masters_only(authz: PolicyAuthorizer) -> None:
    admin = UserInfo(name="root", groups=("system:masters", "system:authenticated"))
    for verb in ("get", "create", "update", "patch", "delete", ""):
        for sub in ("proxy", "pods", "stats", "metrics", "log", "healthz", "configz", "checkpoint"):
            assert ask(authz, admin, verb, sub) is ALLOW
    for user in (
        UserInfo(name="system:anonymous", groups=("system:unauthenticated",)),
        UserInfo(name="alice", groups=("system:authenticated",)),
        UserInfo(name="system:masters"),  # a user named like the group is not in it
    ):
        for sub in ("proxy", "pods", "stats", "healthz"):
            assert ask(authz, user, "get", sub) is NO


HEADER = "apiVersion: rbac.authorization.k8s.io/v1\n"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a: [", "not valid YAML"),
        ("- 1\n", "document 1: (document): must be a mapping"),
        (HEADER + "kind: Role\nmetadata: {name: r}\n", "document 1: kind: must be ClusterRole or"),
        ("apiVersion: rbac.authorization.k8s.io/v1beta1\nkind: ClusterRole\n",
         "document 1: apiVersion: must be rbac.authorization.k8s.io/v1"),
        (HEADER + "kind: ClusterRole\nmetadata: {}\n", "document 1: metadata.name: is required"),
        (HEADER + "kind: ClusterRole\nmetadata: {name: r}\nrules: [{resources: [nodes/proxy]}]\n",
         "document 1: rules[0].verbs: must name at least one verb"),
        (HEADER + "kind: ClusterRole\nmetadata: {name: r}\nrules: [{verbs: [get]}]\n",
         "rules[0].resources: must name at least one resource"),
        (HEADER + "kind: ClusterRole\nmetadata: {name: r}\nrules: [{verbs: get, resources: [x]}]\n",
         "rules[0].verbs: must be a list of strings"),
        (HEADER + "kind: ClusterRole\nmetadata: {name: r}\nrules: [{verb: [get]}]\n",
         "rules[0].verb: unknown field"),
        (HEADER + "kind: ClusterRole\nmetadata: {name: r}\n"
         "rules: [{verbs: [get], nonResourceURLs: [/pods]}]\n", "rules[0].nonResourceURLs"),
        (HEADER + "kind: ClusterRoleBinding\nmetadata: {name: b}\n"
         "roleRef: {kind: ClusterRole, name: ghost}\nsubjects: []\n",
         "document 1: roleRef.name: ClusterRole 'ghost' is not in the file"),
        (HEADER + "kind: ClusterRole\nmetadata: {name: r}\n---\n" + HEADER +
         "kind: ClusterRoleBinding\nmetadata: {name: b}\n"
         "roleRef: {kind: ClusterRole, name: r}\nsubjects: [{kind: Robot, name: x}]\n",
         "document 2: subjects[0].kind: must be one of User, Group, ServiceAccount"),
        (HEADER + "kind: ClusterRole\nmetadata: {name: r}\n---\n" + HEADER +
         "kind: ClusterRoleBinding\nmetadata: {name: b}\n"
         "roleRef: {kind: ClusterRole, name: r}\nsubjects: [{kind: ServiceAccount, name: x}]\n",
         "document 2: subjects[0].namespace: is required"),
        (HEADER + "kind: ClusterRole\nmetadata: {name: r}\n---\n" + HEADER +
         "kind: ClusterRole\nmetadata: {name: r}\n", "document 2: metadata.name: ClusterRole 'r'"),
        (HEADER + "kind: ClusterRoleBinding\nmetadata: {name: b}\n"
         "roleRef: {kind: Role, name: r}\n", "roleRef.kind: must be ClusterRole"),
    ],
)  # fmt: skip
def test_bad_files_name_document_and_field(text: str, message: str) -> None:
    with pytest.raises(PolicyFileError) as exc:
        parse_policy(text, source="p.yaml")
    assert message in str(exc.value)
    assert str(exc.value).startswith("policy: p.yaml") or "p.yaml" in str(exc.value)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(PolicyFileError, match="cannot read policy file"):
        PolicyAuthorizer.from_file(tmp_path / "nope.yaml")


async def test_cached_decisions_never_cross_users_groups_verbs_or_nodes() -> None:
    """``authorize`` remembers decisions; a remembered answer must only be reused for the
    same name, groups, verb, subresource and node (the second round comes from the cache)."""
    authz = PolicyAuthorizer(parse_policy(POLICY))
    cases = [
        (UserInfo(name="x", groups=("monitoring",)), "get", "stats", "node-1", ALLOW),
        (UserInfo(name="x"), "get", "stats", "node-1", NO),  # same name, not in the group
        (UserInfo(name="x", groups=("monitoring", "other")), "get", "stats", "node-1", ALLOW),
        (UserInfo(name="dana"), "create", "proxy", "node-1", ALLOW),
        (UserInfo(name="dana"), "create", "proxy", "node-2", NO),
        (UserInfo(name="dana"), "get", "proxy", "node-1", NO),
        (UserInfo(name="dana"), "create", "stats", "node-1", NO),
        (UserInfo(name="r", groups=("readers",)), "get", "pods", "node-1", ALLOW),
        (UserInfo(name="r", groups=("readers",)), "get", "configz", "node-1", NO),
    ]
    for _ in range(2):
        for user, verb, sub, node, want in cases:
            a = Attributes(user=user, verb=verb, name=node, subresource=sub, path="/x")
            assert (await authz.authorize(a)).decision is want, (user, verb, sub, node)


async def test_decision_cache_is_bounded() -> None:
    authz = PolicyAuthorizer(parse_policy(POLICY))
    for i in range(PolicyAuthorizer._CACHE_MAX + 10):
        a = Attributes(user=UserInfo(name=f"u{i}"), verb="get", name="n", subresource="stats",
                       path="/stats")  # fmt: skip
        assert (await authz.authorize(a)).decision is NO
    assert len(authz._decisions) <= PolicyAuthorizer._CACHE_MAX
