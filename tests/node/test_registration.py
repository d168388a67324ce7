"""Registration, node status and the Lease, against kube-apiserver v1.20.2 (reference §1, §2)."""

from __future__ import annotations

import os
import platform
import signal
import time
from pathlib import Path

from pykubelet import __version__
from tests.node.cluster import ApiNode, ControlPlane, condition, wait_api


def _meminfo_bytes() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no MemTotal")


def test_registration_labels_capacity_addresses_info_conditions(
    api_node: ApiNode, control_plane: ControlPlane
) -> None:
    cp = control_plane
    api_node.extra_args += [
        "--node-ip", "127.0.0.1",
        "--node-labels", "example.com/role=test,node.kubernetes.io/pool=a",
        "--register-with-taints", "example.com/dedicated=pykubelet:NoSchedule",
    ]  # fmt: skip
    api_node.start()
    node = wait_api(lambda: cp.node(), 30, "the Node object")
    md, st = node["metadata"], node["status"]
    arch = {"x86_64": "amd64", "aarch64": "arm64"}[platform.machine()]
    for key, value in {
        "kubernetes.io/hostname": cp.node_name,
        "kubernetes.io/os": "linux",
        "kubernetes.io/arch": arch,
        "beta.kubernetes.io/os": "linux",
        "beta.kubernetes.io/arch": arch,
        "example.com/role": "test",
        "node.kubernetes.io/pool": "a",
    }.items():
        assert md["labels"].get(key) == value, key
    assert md["annotations"]["volumes.kubernetes.io/controller-managed-attach-detach"] == "true"
    assert node["spec"]["taints"] == [
        {"key": "example.com/dedicated", "value": "pykubelet", "effect": "NoSchedule"}
    ]
    cap, alloc = st["capacity"], st["allocatable"]
    assert cap["cpu"] == str(os.cpu_count())
    assert cap["pods"] == "110" and alloc["pods"] == "110"
    assert cap["memory"] == f"{_meminfo_bytes() // 1024}Ki"
    hugepage_sizes = {
        d.name for d in Path("/sys/kernel/mm/hugepages").iterdir()
    }  # e.g. hugepages-2048kB
    if "hugepages-2048kB" in hugepage_sizes:
        assert "hugepages-2Mi" in cap and "hugepages-2Mi" in alloc
    assert "ephemeral-storage" in cap and "ephemeral-storage" in alloc
    # allocatable memory = capacity - evictionHard memory.available (100Mi) - hugepages
    assert st["addresses"] == [
        {"type": "InternalIP", "address": "127.0.0.1"},
        {"type": "Hostname", "address": cp.node_name},
    ]
    assert st["daemonEndpoints"]["kubeletEndpoint"]["Port"] == api_node.port
    info = st["nodeInfo"]
    assert info["containerRuntimeVersion"] == f"pykubelet://{__version__}"
    assert info["kubeletVersion"].startswith("v1.20.2")
    assert info["operatingSystem"] == "linux" and info["architecture"] == arch
    assert info["kernelVersion"] == platform.release()
    assert info["bootID"] == Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    reasons = {c["type"]: (c["status"], c["reason"]) for c in st["conditions"]}
    assert reasons == {
        "MemoryPressure": ("False", "KubeletHasSufficientMemory"),
        "DiskPressure": ("False", "KubeletHasNoDiskPressure"),
        "PIDPressure": ("False", "KubeletHasSufficientPID"),
        "Ready": ("True", "KubeletReady"),
    }
    assert condition(node, "Ready")["message"] == "kubelet is posting ready status"  # type: ignore[index]

    # node events, in namespace default with the node's name as UID (as upstream)
    def node_reasons() -> set[str]:
        return {
            e["reason"]
            for e in cp.get("events", "-n", "default")["items"]
            if e["involvedObject"].get("kind") == "Node"
            and e["involvedObject"].get("uid") == cp.node_name
            and e["source"].get("component") == "kubelet"
        }

    wait_api(lambda: {"Starting", "NodeReady"} <= node_reasons(), 30, "Starting, NodeReady")
    # the API server reaches the node by name through the address it was given
    out = cp.kubectl("get", "--raw", f"/api/v1/nodes/{cp.node_name}/proxy/healthz")
    assert out.strip() == "ok"


def test_existing_node_is_adopted_and_default_labels_reconciled(
    api_node: ApiNode, control_plane: ControlPlane
) -> None:
    cp = control_plane
    api_node.start()
    first = wait_api(lambda: cp.node(), 30, "the Node object")
    api_node.stop()
    cp.kubectl("label", "node", cp.node_name, "kubernetes.io/hostname=wrong", "--overwrite")
    api_node.start()
    fixed = wait_api(
        lambda: (
            (n := cp.node())
            and n["metadata"]["labels"]["kubernetes.io/hostname"] == cp.node_name
            and n
        ),
        30,
        "the default label reconciled",
    )
    assert fixed["metadata"]["uid"] == first["metadata"]["uid"]  # adopted, not re-created


def test_status_patch_skipped_while_unchanged_and_sent_on_report_frequency(
    api_node: ApiNode, control_plane: ControlPlane, tmp_path: Path
) -> None:
    cp = control_plane
    config = tmp_path / "config.yaml"
    config.write_text(
        "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\n"
        "nodeStatusUpdateFrequency: 1s\nnodeStatusReportFrequency: 1h\n"
    )
    api_node.extra_args += ["--config", str(config), "--node-status-update-frequency", "1s"]
    api_node.start()
    node = wait_api(lambda: cp.node(), 30, "the Node object")
    ready = wait_api(lambda: condition(cp.node(), "Ready"), 30, "Ready")
    # several update ticks pass: nothing changed, the report period (1h) has not: no PATCH
    time.sleep(4)
    assert condition(cp.node(), "Ready")["lastHeartbeatTime"] == ready["lastHeartbeatTime"]  # type: ignore[index]
    assert node["metadata"]["uid"]
    # a change is sent at the next tick: the node lifecycle controller's view is overwritten
    cp.kubectl(
        "patch", "node", cp.node_name, "--subresource=status", "--type=merge", "-p",
        '{"status":{"conditions":[{"type":"Ready","status":"Unknown","reason":"Test"}]}}',
        check=False,
    )  # fmt: skip
    api_node.stop()
    config.write_text(
        "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\n"
        "nodeStatusUpdateFrequency: 1s\nnodeStatusReportFrequency: 2s\n"
    )
    api_node.start()
    seen = {condition(cp.node(), "Ready")["lastHeartbeatTime"]}  # type: ignore[index]
    wait_api(
        lambda: seen.add(condition(cp.node(), "Ready")["lastHeartbeatTime"]) or len(seen) >= 3,  # type: ignore[func-returns-value,index]
        30,
        "heartbeats every report period",
    )


def test_lease_renewed_and_node_lifecycle_after_sigkill(
    api_node: ApiNode, control_plane: ControlPlane, namespace: str
) -> None:
    cp = control_plane
    api_node.start()
    node = wait_api(lambda: cp.node(), 30, "the Node object")
    lease = wait_api(lambda: cp.get("lease", "-n", "kube-node-lease", cp.node_name), 30, "lease")
    assert lease["spec"]["holderIdentity"] == cp.node_name
    assert lease["spec"]["leaseDurationSeconds"] == 40
    renew = lease["spec"]["renewTime"]
    assert len(renew.split(".")[1]) == 7  # MicroTime: 6 digits and Z
    lease = wait_api(
        lambda: (
            (x := cp.get("lease", "-n", "kube-node-lease", cp.node_name))
            and x["spec"]["renewTime"] != renew
            and x
        ),
        25,
        "a lease renewal (every 10 s)",
    )
    assert lease["metadata"]["ownerReferences"] == [
        {"apiVersion": "v1", "kind": "Node", "name": cp.node_name, "uid": node["metadata"]["uid"]}
    ]
    cp.apply(
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "sleeper"},
            "spec": {
                "nodeName": cp.node_name,
                "terminationGracePeriodSeconds": 1,
                "containers": [
                    {"name": "c", "image": "localhost/busybox:1.35", "command": ["sleep", "3600"]}
                ],
            },
        },
        namespace,
    )

    def running() -> dict[str, object] | None:
        p = cp.get("pod", "-n", namespace, "sleeper")
        cs = ((p or {}).get("status") or {}).get("containerStatuses") or []
        return cs[0] if cs and "running" in cs[0]["state"] else None

    before = wait_api(running, 60, "the pod Running in the API")
    api_node.stop(signal.SIGKILL)
    # the node lifecycle controller (node-monitor-grace-period: 20 s here) gives up on the node
    unknown = wait_api(
        lambda: (c := condition(cp.node(), "Ready")) and c["status"] == "Unknown" and c,
        120,
        "Ready=Unknown after the agent was killed",
    )
    assert unknown["reason"] == "NodeStatusUnknown"
    api_node.start()
    wait_api(
        lambda: (c := condition(cp.node(), "Ready")) and c["status"] == "True",
        60,
        "Ready again after the restart",
    )
    after = wait_api(running, 30, "the pod still Running")
    assert after["containerID"] == before["containerID"]
    assert after["restartCount"] == 0
