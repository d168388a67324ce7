"""Pure translations: quantities, downward API env, securityContext, probe/hook parsing."""

from __future__ import annotations

from fractions import Fraction
from typing import Any

import pytest

from pykubelet.api import Pod
from pykubelet.api.quantity import parse_quantity
from pykubelet.core.errors import InvalidInput
from pykubelet.pods.env import expand as expand_vars
from pykubelet.pods.spec_errors import ContainerConfigError, UnsupportedByRuntime
from pykubelet.podspec.actions import GrpcAction, HttpGetAction, SleepAction, parse_probe
from pykubelet.podspec.downward import (
    NodeAllocatable,
    PodFacts,
    container_env,
    downward_files,
)
from pykubelet.podspec.hooks import container_hook
from pykubelet.podspec.prober import ProbeType, container_probes
from pykubelet.podspec.security import DEFAULT_CAPABILITIES, container_security

ALLOC = NodeAllocatable(cpu_milli=2000, memory_bytes=8 * 2**30, ephemeral_storage_bytes=10**11)


def pod(container: dict[str, Any] | None = None, **spec: Any) -> Pod:
    c = {"name": "app", "image": "busybox:1.35", **(container or {})}
    return Pod.from_dict(
        {
            "metadata": {
                "name": "web",
                "namespace": "shop",
                "uid": "u-1",
                "labels": {"app": "web", "tier": 'f"e'},
                "annotations": {"note": "x\ny"},
            },
            "spec": {"containers": [c], "nodeName": "node-1", **spec},
        }
    )


FACTS = PodFacts(
    name="web",
    namespace="shop",
    uid="u-1",
    labels={"app": "web", "tier": 'f"e'},
    annotations={"note": "x\ny"},
    node_name="node-1",
    service_account_name="builder",
    host_ip="192.0.2.10",
    pod_ip="10.88.42.7",
    pod_ips=("10.88.42.7", "fd00::7"),
)


@pytest.mark.parametrize(
    ("text", "amount"),
    [
        ("500m", Fraction(1, 2)),
        ("1.5Gi", Fraction(3 * 2**29)),
        ("2e3", Fraction(2000)),
        ("1E-2", Fraction(1, 100)),
        ("0.1", Fraction(1, 10)),
        ("128974848", Fraction(128974848)),
        ("129M", Fraction(129 * 10**6)),
        ("123Mi", Fraction(123 * 2**20)),
        ("1k", Fraction(1000)),
        ("-2", Fraction(-2)),
        (".5", Fraction(1, 2)),
        ("3n", Fraction(3, 10**9)),
    ],
)
def test_quantities_parse_exactly(text: str, amount: Fraction) -> None:
    assert parse_quantity(text).amount == amount


@pytest.mark.parametrize("bad", ["", "1.5.5", "12KB", "Mi", "1 Gi", "abc", "1e"])
def test_bad_quantities_name_the_field(bad: str) -> None:
    with pytest.raises(InvalidInput, match=r"limits\.memory"):
        parse_quantity(bad, field="limits.memory")


def test_rounding_up_as_upstream() -> None:
    assert parse_quantity("1.1m").milli_value() == 2
    assert parse_quantity("0.5").value() == 1


def test_field_ref_env_covers_every_path() -> None:
    paths = {
        "N": "metadata.name",
        "NS": "metadata.namespace",
        "UID": "metadata.uid",
        "APP": "metadata.labels['app']",
        "NOTE": "metadata.annotations['note']",
        "MISSING": "metadata.labels['nope']",
        "NODE": "spec.nodeName",
        "SA": "spec.serviceAccountName",
        "HOST": "status.hostIP",
        "IP": "status.podIP",
        "IPS": "status.podIPs",
    }
    env = [{"name": k, "valueFrom": {"fieldRef": {"fieldPath": v}}} for k, v in paths.items()]
    env.append({"name": "GREETING", "value": "$(N) in $(NS) at $(IP), $$(N) $(UNSET)"})
    p = pod({"env": env})
    out = dict(container_env(p.spec.containers[0], FACTS, ALLOC))
    assert out == {
        "N": "web",
        "NS": "shop",
        "UID": "u-1",
        "APP": "web",
        "NOTE": "x\ny",
        "MISSING": "",
        "NODE": "node-1",
        "SA": "builder",
        "HOST": "192.0.2.10",
        "IP": "10.88.42.7",
        "IPS": "10.88.42.7,fd00::7",
        "GREETING": "web in shop at 10.88.42.7, $(N) $(UNSET)",
    }


def test_resource_field_ref_with_divisors_and_allocatable_fallback() -> None:
    def ref(res: str, divisor: str | None = None) -> dict[str, Any]:
        r: dict[str, Any] = {"resource": res}
        if divisor:
            r["divisor"] = divisor
        return {"resourceFieldRef": r}

    env = [
        {"name": "CPU_LIMIT_M", "valueFrom": ref("limits.cpu", "1m")},
        {"name": "CPU_LIMIT", "valueFrom": ref("limits.cpu")},
        {"name": "MEM_LIMIT_MI", "valueFrom": ref("limits.memory", "1Mi")},
        {"name": "MEM_REQ", "valueFrom": ref("requests.memory")},
        {"name": "CPU_REQ_M", "valueFrom": ref("requests.cpu", "1m")},
        {"name": "EPH_LIMIT_G", "valueFrom": ref("limits.ephemeral-storage", "1G")},
    ]
    c = {"env": env, "resources": {"limits": {"cpu": "250m", "memory": "64Mi"}}}
    out = dict(container_env(pod(c).spec.containers[0], FACTS, ALLOC))
    assert out == {
        "CPU_LIMIT_M": "250",
        "CPU_LIMIT": "1",  # ceil(0.25)
        "MEM_LIMIT_MI": "64",
        "MEM_REQ": str(64 * 2**20),  # requests default to limits
        "CPU_REQ_M": "250",
        "EPH_LIMIT_G": "100",  # from allocatable
    }
    bare = dict(container_env(pod({"env": env}).spec.containers[0], FACTS, ALLOC))
    assert bare["CPU_LIMIT_M"] == "2000" and bare["CPU_REQ_M"] == "0"


@pytest.mark.parametrize("kind", ["configMapKeyRef", "secretKeyRef"])
def test_config_map_and_secret_refs_are_refused_with_the_reason(kind: str) -> None:
    env = [{"name": "X", "valueFrom": {kind: {"name": "cfg", "key": "k"}}}]
    with pytest.raises(ContainerConfigError, match="standalone node") as info:
        container_env(pod({"env": env}).spec.containers[0], FACTS, ALLOC)
    assert info.value.waiting_reason == "CreateContainerConfigError"
    assert kind in str(info.value) and "env[0]" in str(info.value)


def test_unknown_field_path_is_named() -> None:
    env = [{"name": "X", "valueFrom": {"fieldRef": {"fieldPath": "spec.bogus"}}}]
    with pytest.raises(InvalidInput, match=r"env\[0\].valueFrom.fieldRef.fieldPath"):
        container_env(pod({"env": env}).spec.containers[0], FACTS, ALLOC)


def test_downward_files_format_maps_like_upstream() -> None:
    items: list[dict[str, Any]] = [
        {"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}},
        {"path": "annotations", "fieldRef": {"fieldPath": "metadata.annotations"}},
        {"path": "sub/name", "fieldRef": {"fieldPath": "metadata.name"}, "mode": 0o600},
        {
            "path": "mem",
            "resourceFieldRef": {"containerName": "app", "resource": "limits.memory"},
        },
    ]
    files = downward_files(items, FACTS, pod().spec.containers, ALLOC, where="v")
    got = {f.path: (f.content, f.mode) for f in files}
    assert got["labels"] == (b'app="web"\ntier="f\\"e"', None)
    assert got["annotations"] == (b'note="x\\ny"', None)
    assert got["sub/name"] == (b"web", 0o600)
    assert got["mem"] == (str(8 * 2**30).encode(), None)
    with pytest.raises(InvalidInput, match=r"items\[0\].path"):
        downward_files([{"path": "../x", "fieldRef": {}}], FACTS, (), ALLOC, where="v")
    with pytest.raises(InvalidInput, match=r"status\.podIP"):
        downward_files(
            [{"path": "ip", "fieldRef": {"fieldPath": "status.podIP"}}], FACTS, (), ALLOC, where="v"
        )


def test_expand_vars_edge_cases() -> None:
    env = {"A": "1", "B": "2"}
    assert expand_vars("$(A)$(B)", env) == "12"
    assert expand_vars("$(A", env) == "$(A"
    assert expand_vars("$$$(A)", env) == "$1"
    assert expand_vars("$", env) == "$"


def test_security_context_merges_pod_and_container() -> None:
    p = pod(
        {
            "securityContext": {
                "runAsUser": 1001,
                "readOnlyRootFilesystem": True,
                "allowPrivilegeEscalation": False,
                "capabilities": {"add": ["net_admin"], "drop": ["ALL"]},
            }
        },
        securityContext={
            "runAsUser": 1000,
            "runAsGroup": 3000,
            "supplementalGroups": [4000],
            "fsGroup": 2000,
            "runAsNonRoot": True,
        },
    )
    eff = container_security(p, p.spec.containers[0])
    sc = eff.config
    assert (sc.run_as_user, sc.run_as_group) == (1001, 3000)
    assert sc.supplemental_groups == (4000, 2000)
    assert sc.readonly_rootfs and sc.no_new_privs and not sc.privileged
    assert sc.capabilities.add == ("CAP_NET_ADMIN",) and sc.capabilities.drop == ("ALL",)
    assert eff.fs_group == 2000
    assert "CAP_NET_BIND_SERVICE" in DEFAULT_CAPABILITIES


def test_run_as_non_root_refusals_carry_upstream_messages() -> None:
    p = pod({"securityContext": {"runAsNonRoot": True, "runAsUser": 0}})
    with pytest.raises(ContainerConfigError) as info:
        container_security(p, p.spec.containers[0])
    assert str(info.value) == (
        'container\'s runAsUser breaks non-root policy (pod: "web_shop(u-1)", container: app)'
    )
    p = pod({"securityContext": {"runAsNonRoot": True}})
    with pytest.raises(ContainerConfigError, match="image will run as root"):
        container_security(p, p.spec.containers[0], image_user="")
    with pytest.raises(ContainerConfigError, match=r"non-numeric user \(nobody\)"):
        container_security(p, p.spec.containers[0], image_user="nobody")
    assert container_security(p, p.spec.containers[0], image_user="1000:1000").config
    # without runAsNonRoot, root is fine
    q = pod({"securityContext": {"runAsUser": 0}})
    assert container_security(q, q.spec.containers[0]).config.run_as_user == 0


@pytest.mark.parametrize(
    ("sc", "field"),
    [
        ({"seLinuxOptions": {"level": "s0"}}, "seLinuxOptions"),
        ({"seccompProfile": {"type": "RuntimeDefault"}}, "seccompProfile"),
        ({"procMount": "Unmasked"}, "procMount"),
    ],
)
def test_unenforceable_settings_are_refused(sc: dict[str, Any], field: str) -> None:
    p = pod({"securityContext": sc})
    with pytest.raises(UnsupportedByRuntime, match=field):
        container_security(p, p.spec.containers[0])
    ok = pod({"securityContext": {"seccompProfile": {"type": "Unconfined"}}})
    container_security(ok, ok.spec.containers[0])


def test_bad_security_values_are_named() -> None:
    p = pod({"securityContext": {"capabilities": {"add": ["CAP_WARP_DRIVE"]}}})
    with pytest.raises(ContainerConfigError, match=r"capabilities.add\[0\]"):
        container_security(p, p.spec.containers[0])
    p = pod({"securityContext": {"privileged": True, "allowPrivilegeEscalation": False}})
    with pytest.raises(ContainerConfigError, match="allowPrivilegeEscalation"):
        container_security(p, p.spec.containers[0])
    p = pod(securityContext={"runAsUser": -1})
    with pytest.raises(ContainerConfigError, match=r"spec\.securityContext\.runAsUser"):
        container_security(p, p.spec.containers[0])


def test_probe_parsing_defaults_named_ports_and_errors() -> None:
    c = pod(
        {
            "ports": [{"name": "http", "containerPort": 8080}],
            "readinessProbe": {
                "httpGet": {
                    "path": "healthz",
                    "port": "http",
                    "httpHeaders": [{"name": "X-A", "value": "1"}],
                },
                "successThreshold": 2,
            },
            "livenessProbe": {"grpc": {"port": 9000}, "terminationGracePeriodSeconds": 5},
            "lifecycle": {"preStop": {"sleep": {"seconds": 3}}},
        }
    ).spec.containers[0]
    probes = container_probes(c, "c")
    ready = probes[ProbeType.READINESS]
    assert ready.handler == HttpGetAction(port=8080, path="/healthz", headers=(("X-A", "1"),))
    assert (ready.period_s, ready.timeout_s, ready.failure_threshold) == (10.0, 1.0, 3)
    assert ready.success_threshold == 2
    live = probes[ProbeType.LIVENESS]
    assert live.handler == GrpcAction(port=9000) and live.termination_grace_period_s == 5.0
    assert container_hook(c, "preStop") == SleepAction(seconds=3.0)
    assert container_hook(c, "postStart") is None
    with pytest.raises(InvalidInput, match=r"livenessProbe\.successThreshold"):
        parse_probe(
            {"tcpSocket": {"port": 1}, "successThreshold": 2},
            c,
            "livenessProbe",
            needs_single_success=True,
        )
    with pytest.raises(InvalidInput, match="no container port named 'nope'"):
        parse_probe({"tcpSocket": {"port": "nope"}}, c, "p", needs_single_success=False)
    with pytest.raises(InvalidInput, match="exactly one"):
        parse_probe({}, c, "p", needs_single_success=False)
    with pytest.raises(InvalidInput, match="exactly one"):
        parse_probe({"sleep": {"seconds": 1}}, c, "p", needs_single_success=False)
