"""The pure parts of node mode: node status, the skip rule, quantities, the token bucket."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest

from pykubelet.core.clock import FakeClock
from pykubelet.node.client import RateLimiter
from pykubelet.node.lease import micro_time
from pykubelet.node.machine import MachineFacts
from pykubelet.node.node_status import (
    NodeSettings,
    adopt_patch,
    build_node,
    build_status,
    node_images,
    quantity,
    status_differs,
)

FACTS = MachineFacts(
    cpu_cores=4,
    memory_bytes=16 << 30,
    ephemeral_storage_bytes=100 << 30,
    hugepages={"hugepages-2Mi": 4 << 20, "hugepages-1Gi": 0},
    machine_id="m",
    boot_id="b",
    kernel_version="6.1.0",
    os_image="Debian GNU/Linux 12 (bookworm)",
    architecture="amd64",
)
S = NodeSettings(
    name="n1",
    hostname="n1",
    node_ip="10.0.0.5",
    port=10250,
    max_pods=110,
    labels=(("example.com/role", "web"), ("kubernetes.io/os", "ignored-override")),
    taints=(("k", "", "NoSchedule"),),
    kubelet_version="v1.20.2",
    runtime_version="pykubelet://0.1.0",
)


@pytest.mark.parametrize(
    ("n", "text"),
    [(0, "0"), (1024, "1Ki"), (100 << 20, "100Mi"), (16 << 30, "16Gi"), (1000, "1000"),
     (16393692 * 1024, "16393692Ki")],
)  # fmt: skip
def test_quantity_is_binary_si_canonical(n: int, text: str) -> None:
    assert quantity(n) == text


def test_capacity_and_allocatable_take_out_eviction_thresholds_and_hugepages() -> None:
    st = build_status(S, FACTS, previous=None, ready_errors=[], now=1_700_000_000)
    assert st["capacity"] == {
        "cpu": "4",
        "memory": "16Gi",
        "pods": "110",
        "ephemeral-storage": "100Gi",
        "hugepages-2Mi": "4Mi",
        "hugepages-1Gi": "0",
    }
    # 16Gi - 100Mi - 4Mi of hugepages; 100Gi - 10%
    assert st["allocatable"]["memory"] == quantity((16 << 30) - (104 << 20))
    assert st["allocatable"]["ephemeral-storage"] == quantity((100 << 30) - (10 << 30))
    assert st["addresses"] == [
        {"type": "InternalIP", "address": "10.0.0.5"},
        {"type": "Hostname", "address": "n1"},
    ]
    assert st["daemonEndpoints"] == {"kubeletEndpoint": {"Port": 10250}}


def test_conditions_keep_transition_time_and_report_not_ready_errors() -> None:
    first = build_status(S, FACTS, previous=None, ready_errors=[], now=1_700_000_000)
    later = build_status(S, FACTS, previous=first, ready_errors=[], now=1_700_000_100)
    ready = {c["type"]: c for c in later["conditions"]}["Ready"]
    assert ready["lastTransitionTime"] == "2023-11-14T22:13:20Z"
    assert ready["lastHeartbeatTime"] == "2023-11-14T22:15:00Z"
    bad = build_status(S, FACTS, previous=later, ready_errors=["a", "b"], now=1_700_000_200)
    ready = {c["type"]: c for c in bad["conditions"]}["Ready"]
    assert (ready["status"], ready["reason"], ready["message"]) == (
        "False",
        "KubeletNotReady",
        "[a, b]",
    )
    assert ready["lastTransitionTime"] == "2023-11-14T22:16:40Z"
    assert [c["type"] for c in bad["conditions"]] == [
        "MemoryPressure",
        "DiskPressure",
        "PIDPressure",
        "Ready",
    ]


def test_skip_rule_ignores_heartbeats_only() -> None:
    first = build_status(S, FACTS, previous=None, ready_errors=[], now=1_700_000_000)
    assert status_differs(first, first, None)  # never sent: send
    tick = build_status(S, FACTS, previous=first, ready_errors=[], now=1_700_000_010)
    assert not status_differs(first, tick, first)
    unknown = {
        **first,
        "conditions": [
            {**c, "status": "Unknown"} if c["type"] == "Ready" else c for c in first["conditions"]
        ],
    }
    assert status_differs(unknown, tick, first)  # the controller's Unknown is overwritten
    moved = build_status(
        replace(S, node_ip="10.0.0.6"), FACTS, previous=first,
        ready_errors=[], now=1_700_000_010,
    )  # fmt: skip
    assert status_differs(first, moved, first)


def test_registered_node_has_labels_taints_and_annotation() -> None:
    node = build_node(S, FACTS, {})
    labels = node["metadata"]["labels"]
    assert labels["kubernetes.io/hostname"] == "n1"
    assert labels["beta.kubernetes.io/arch"] == "amd64"
    assert labels["example.com/role"] == "web"
    assert labels["kubernetes.io/os"] == "ignored-override"  # --node-labels merged last
    assert node["spec"]["taints"] == [{"key": "k", "effect": "NoSchedule"}]
    assert "podCIDR" not in node["spec"]


def test_adoption_rewrites_default_labels_and_hugepages_only() -> None:
    existing = build_node(S, FACTS, build_status(S, FACTS, previous=None, ready_errors=[], now=0))
    existing["metadata"]["labels"]["kubernetes.io/hostname"] = "old"
    existing["metadata"]["labels"].pop("example.com/role")
    existing["status"]["capacity"]["hugepages-16Gi"] = "0"
    patch = adopt_patch(existing, S, FACTS)
    # the default labels get their computed values back (a --node-labels override of one is
    # not re-applied to an existing node, as upstream)
    assert patch["metadata"] == {
        "labels": {"kubernetes.io/hostname": "n1", "kubernetes.io/os": "linux"}
    }
    assert patch["status"] == {"capacity": {"hugepages-16Gi": None}}
    plain = replace(S, labels=())
    clean = build_node(
        plain, FACTS, build_status(plain, FACTS, previous=None, ready_errors=[], now=0)
    )
    assert adopt_patch(clean, plain, FACTS) == {}


def test_micro_time_has_six_fractional_digits() -> None:
    assert micro_time(1_700_000_000.25) == "2023-11-14T22:13:20.250000Z"


async def test_rate_limiter_allows_burst_then_qps() -> None:
    clock = FakeClock()
    limiter = RateLimiter(qps=2.0, burst=3, clock=clock)
    for _ in range(3):
        await asyncio.wait_for(limiter.wait(), 1)  # the burst is free
    waiter = asyncio.ensure_future(limiter.wait())
    await asyncio.sleep(0)
    assert not waiter.done()
    await clock.advance(0.4)
    assert not waiter.done()
    await clock.advance(0.2)  # 0.5 s buys one token at 2 qps
    await asyncio.wait_for(waiter, 1)


def test_images_largest_first_digests_then_tags_five_names_and_the_cap() -> None:
    from pykubelet.runtime.types import ImageInfo

    many = tuple(f"r/many:{i}" for i in range(6))
    images = [
        ImageInfo(id="sha256:a", repo_tags=("r/small:1",), size_bytes=10),
        ImageInfo(id="sha256:b", repo_tags=many, size_bytes=30, repo_digests=("r/many@sha256:d",)),
        ImageInfo(id="sha256:c", repo_tags=("r/mid:1", "r/mid:2"), size_bytes=20),
    ]
    assert node_images(images, 50) == [
        {
            "names": ["r/many@sha256:d", "r/many:0", "r/many:1", "r/many:2", "r/many:3"],
            "sizeBytes": 30,
        },
        {"names": ["r/mid:1", "r/mid:2"], "sizeBytes": 20},
        {"names": ["r/small:1"], "sizeBytes": 10},
    ]
    assert [i["sizeBytes"] for i in node_images(images, -1)] == [30, 20, 10]
    assert [i["sizeBytes"] for i in node_images(images, 1)] == [30]
    assert node_images(images, 0) == []


async def test_volume_refresher_kicked_pods_at_once_all_pods_each_period() -> None:
    from pykubelet.api import Pod
    from pykubelet.node.volume_refresh import VolumeRefresher

    def pod(uid: str) -> Pod:
        return Pod.from_dict(
            {
                "metadata": {"name": uid, "namespace": "ns", "uid": uid},
                "spec": {"containers": [{"name": "c", "image": "i"}]},
            }
        )

    pods = [pod("a"), pod("b")]
    done: list[str] = []

    async def refresh(p: Pod) -> bool:
        done.append(p.uid)
        return True

    clock = FakeClock()
    refresher = VolumeRefresher(lambda: pods, refresh, clock, period_s=60)
    task = asyncio.create_task(refresher.run())
    try:
        for _ in range(5):  # the loop starts: its first period ends at t + 60
            await asyncio.sleep(0)
        await clock.advance(1)
        refresher.kick(["b"])  # a watched object of pod b changed
        for _ in range(20):  # the loop refreshes b and sleeps again
            await asyncio.sleep(0)
        assert done == ["b"]  # at once, not at the period
        await clock.advance(59)
        for _ in range(20):
            await asyncio.sleep(0)
        assert done == ["b", "a", "b"]  # the period refreshes every pod
        assert refresher.refreshed == 3
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
