"""Admission predicates (upstream lifecycle/predicate.go): reasons and messages, row by row."""

from __future__ import annotations

from typing import Any

import pytest

from pykubelet.api import Pod
from pykubelet.pods.admission import AdmissionNode, admission_failure, pod_requests

NODE = AdmissionNode(
    name="n1",
    labels={"zone": "a", "size": "5"},
    taints=({"key": "dedicated", "value": "db", "effect": "NoExecute"},),
    allocatable={"cpu": 2000, "memory": 1 << 30, "pods": 110},
)
TOLERATE_ALL = [{"operator": "Exists"}]


def pod(name: str = "p", *, containers: list[dict[str, Any]] | None = None, **spec: Any) -> Pod:
    spec.setdefault("tolerations", TOLERATE_ALL)
    return Pod.from_dict(
        {
            "metadata": {"name": name, "uid": name},
            "spec": {"containers": containers or [{"name": "c", "image": "i"}], **spec},
        }
    )


def res(**requests: str) -> list[dict[str, Any]]:
    return [{"name": "c", "image": "i", "resources": {"requests": requests}}]


def test_requests_sum_containers_and_take_the_largest_init_container() -> None:
    p = pod(
        containers=[
            {"name": "a", "image": "i", "resources": {"requests": {"cpu": "100m"}}},
            {"name": "b", "image": "i", "resources": {"limits": {"cpu": "200m", "memory": "1Mi"}}},
        ],
        initContainers=[{"name": "i", "image": "i", "resources": {"requests": {"cpu": "1"}}}],
        overhead={"cpu": "10m"},
    )
    assert pod_requests(p) == {"cpu": 1010, "memory": 1 << 20}


def test_cpu_that_does_not_fit_is_out_of_cpu_with_upstreams_message() -> None:
    used = [pod("u", containers=res(cpu="1500m"))]
    assert admission_failure(pod(containers=res(cpu="600m")), NODE, used) == (
        "OutOfcpu",
        "Node didn't have enough resource: cpu, requested: 600, used: 1500, capacity: 2000",
    )
    assert admission_failure(pod(containers=res(cpu="500m")), NODE, used) is None


def test_memory_and_unknown_extended_resources() -> None:
    assert admission_failure(pod(containers=res(memory="2Gi")), NODE, [])[0] == "OutOfmemory"  # type: ignore[index]
    failure = admission_failure(pod(containers=res(**{"example.com/gpu": "1"})), NODE, [])
    assert failure == (
        "OutOfexample.com/gpu",
        "Node didn't have enough resource: example.com/gpu, requested: 1, used: 0, capacity: 0",
    )


@pytest.mark.parametrize(
    ("spec", "fits"),
    [
        ({"nodeSelector": {"zone": "a"}}, True),
        ({"nodeSelector": {"zone": "b"}}, False),
        ({"nodeSelector": {"missing": "x"}}, False),
        (
            {
                "affinity": {
                    "nodeAffinity": {
                        "requiredDuringSchedulingIgnoredDuringExecution": {
                            "nodeSelectorTerms": [
                                {
                                    "matchExpressions": [
                                        {"key": "zone", "operator": "In", "values": ["b"]}
                                    ]
                                },
                                {
                                    "matchExpressions": [
                                        {"key": "size", "operator": "Gt", "values": ["4"]}
                                    ]
                                },
                            ]
                        }
                    }
                }
            },
            True,
        ),
        (
            {
                "affinity": {
                    "nodeAffinity": {
                        "requiredDuringSchedulingIgnoredDuringExecution": {
                            "nodeSelectorTerms": [
                                {
                                    "matchExpressions": [
                                        {"key": "zone", "operator": "NotIn", "values": ["a"]}
                                    ]
                                },
                                {
                                    "matchFields": [
                                        {
                                            "key": "metadata.name",
                                            "operator": "In",
                                            "values": ["other"],
                                        }
                                    ]
                                },
                            ]
                        }
                    }
                }
            },
            False,
        ),
        (
            {
                "affinity": {
                    "nodeAffinity": {
                        "requiredDuringSchedulingIgnoredDuringExecution": {
                            "nodeSelectorTerms": [
                                {
                                    "matchExpressions": [
                                        {"key": "gpu", "operator": "DoesNotExist"}
                                    ],
                                    "matchFields": [
                                        {"key": "metadata.name", "operator": "In", "values": ["n1"]}
                                    ],
                                },
                            ]
                        }
                    }
                }
            },
            True,
        ),
    ],
)
def test_node_selector_and_required_affinity(spec: dict[str, Any], fits: bool) -> None:
    failure = admission_failure(pod(**spec), NODE, [])
    if fits:
        assert failure is None
    else:
        assert failure == ("NodeAffinity", "Predicate NodeAffinity failed")


def test_node_name_mismatch() -> None:
    assert admission_failure(pod(nodeName="other"), NODE, []) == (
        "NodeName",
        "Predicate NodeName failed",
    )


@pytest.mark.parametrize(
    ("tolerations", "admitted"),
    [
        ([], False),
        ([{"key": "dedicated", "operator": "Equal", "value": "db"}], True),
        ([{"key": "dedicated", "operator": "Equal", "value": "web"}], False),
        ([{"key": "dedicated", "operator": "Exists", "effect": "NoExecute"}], True),
        ([{"key": "dedicated", "operator": "Exists", "effect": "NoSchedule"}], False),
    ],
)
def test_untolerated_no_execute_taint(tolerations: list[dict[str, Any]], admitted: bool) -> None:
    failure = admission_failure(pod(tolerations=tolerations), NODE, [])
    assert failure == (
        None if admitted else ("TaintToleration", "Predicate TaintToleration failed")
    )


def test_static_pods_ignore_taints_and_no_schedule_taints_are_not_the_kubelets() -> None:
    static = Pod.from_dict(
        {
            "metadata": {
                "name": "s",
                "annotations": {"kubernetes.io/config.source": "file"},
            },
            "spec": {"containers": [{"name": "c", "image": "i"}]},
        }
    )
    assert admission_failure(static, NODE, []) is None
    only_no_schedule = AdmissionNode(
        name="n1", taints=({"key": "k", "effect": "NoSchedule"},), allocatable={"cpu": 1000}
    )
    assert admission_failure(pod(tolerations=[]), only_no_schedule, []) is None


def test_node_from_api_object_parses_allocatable() -> None:
    node = AdmissionNode.from_node(
        {
            "metadata": {"name": "n", "labels": {"a": "b"}},
            "spec": {"taints": [{"key": "k", "effect": "NoExecute"}]},
            "status": {"allocatable": {"cpu": "3500m", "memory": "1Gi", "pods": "110"}},
        }
    )
    assert node.allocatable == {"cpu": 3500, "memory": 1 << 30, "pods": 110}
    assert node.labels == {"a": "b"} and node.taints[0]["key"] == "k"
