"""Pods from the API server, their status and deletion, with the scheduler and the
controller-manager v1.20.2 (reference §3)."""

from __future__ import annotations

import shutil
import urllib.request
from typing import Any

from tests.node.cluster import IMAGE, ApiNode, ControlPlane, condition, wait_api


def _pod(name: str, node: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {
            "nodeName": node,
            "terminationGracePeriodSeconds": 5,
            "containers": [{"name": "c", "image": IMAGE, "command": ["sleep", "3600"]}],
            **spec,
        },
    }


def _http_status(ip: str) -> int:
    try:
        with urllib.request.urlopen(f"http://{ip}:8080/", timeout=5) as r:
            return int(r.status)
    except urllib.error.HTTPError as e:
        return e.code
    except OSError:
        return 0  # not reachable yet (the bridge's neighbour entry)


def _running_pods(cp: ControlPlane, namespace: str, selector: str) -> list[dict[str, Any]]:
    items = cp.get("pods", "-n", namespace, "-l", selector)["items"]
    return [p for p in items if (p.get("status") or {}).get("phase") == "Running"]


def test_deployment_runs_on_the_node_and_scales_to_zero(
    api_node: ApiNode, control_plane: ControlPlane, namespace: str
) -> None:
    cp = control_plane
    api_node.start()
    # what `kubectl create deployment web --image=... -- httpd ...` makes, with a short grace
    # period: httpd as PID 1 ignores SIGTERM, and each replaced replica would wait 30 s
    cp.apply(
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "web", "labels": {"app": "web"}},
            "spec": {
                "replicas": 3,
                "selector": {"matchLabels": {"app": "web"}},
                "template": {
                    "metadata": {"labels": {"app": "web"}},
                    "spec": {
                        "terminationGracePeriodSeconds": 1,
                        "containers": [
                            {
                                "name": "busybox",
                                "image": IMAGE,
                                "command": ["httpd", "-f", "-p", "8080"],
                            }
                        ],
                    },
                },
            },
        },
        namespace,
    )
    pods = wait_api(
        lambda: (r := _running_pods(cp, namespace, "app=web")) and len(r) == 3 and r,
        120,
        "3 replicas Running in the API",
    )
    node = cp.node()
    internal = next(a["address"] for a in node["status"]["addresses"] if a["type"] == "InternalIP")
    for p in pods:
        st = p["status"]
        assert p["spec"]["nodeName"] == cp.node_name
        assert st["hostIP"] == internal
        assert st["podIP"] and st["podIPs"] == [{"ip": st["podIP"]}]
        assert st["startTime"] and st["qosClass"] == "BestEffort"
        assert {c["type"]: c["status"] for c in st["conditions"]} == {
            "PodScheduled": "True",
            "Initialized": "True",
            "ContainersReady": "True",
            "Ready": "True",
        }
        (cs,) = st["containerStatuses"]
        assert cs["containerID"].startswith("pykubelet://")
        assert cs["imageID"].startswith("sha256:") and cs["image"] == IMAGE
        assert cs["restartCount"] == 0 and cs["ready"] is True and "running" in cs["state"]
        # the pod IP serves: httpd answers (404 for /, which has no index)
        wait_api(lambda ip=st["podIP"]: _http_status(ip) == 404, 30, f"httpd on {st['podIP']}")
    # read-only steps also with the kubectl on PATH, when there is one
    for kubectl in filter(None, [str(cp.kubectl_bin), shutil.which("kubectl")]):
        out = cp.kubectl("get", "pods", "-n", namespace, "-o", "wide", binary=kubectl)
        rows = [line.split() for line in out.splitlines()[1:]]  # NAME READY STATUS ... NODE
        assert [(r[2], r[6]) for r in rows] == [("Running", cp.node_name)] * 3, out
        assert " Ready " in cp.kubectl("get", "node", cp.node_name, binary=kubectl)
    # a rolling update to a new command replaces every replica
    old = {p["metadata"]["uid"] for p in pods}
    cp.kubectl(
        "patch", "deployment", "web", "-n", namespace, "-p",
        '{"spec":{"template":{"spec":{"containers":[{"name":"busybox",'
        '"command":["httpd","-f","-p","8081"]}]}}}}',
    )  # fmt: skip
    wait_api(
        lambda: (
            (r := cp.get("pods", "-n", namespace, "-l", "app=web")["items"])
            and len(r) == 3
            and all(
                p["metadata"]["uid"] not in old and p["status"].get("phase") == "Running" for p in r
            )
        ),
        120,
        "3 new replicas Running after the rolling update",
    )
    cp.kubectl("scale", "deployment", "web", "-n", namespace, "--replicas=0")
    wait_api(
        lambda: not cp.get("pods", "-n", namespace)["items"],
        90,
        "pods gone from the API after scale to 0",
    )
    wait_api(lambda: not api_node.get("/pods")["items"], 30, "pods gone from the node")


def test_job_runs_to_completion(
    api_node: ApiNode, control_plane: ControlPlane, namespace: str
) -> None:
    cp = control_plane
    api_node.start()
    cp.kubectl("create", "job", "once", "-n", namespace, f"--image={IMAGE}", "--", "true")
    job = wait_api(
        lambda: (
            (j := cp.get("job", "-n", namespace, "once"))
            and (j.get("status") or {}).get("succeeded") == 1
            and j
        ),
        90,
        "the Job complete",
    )
    assert any(c["type"] == "Complete" for c in job["status"]["conditions"])
    (pod,) = cp.get("pods", "-n", namespace, "-l", "job-name=once")["items"]
    assert pod["status"]["phase"] == "Succeeded"
    term = pod["status"]["containerStatuses"][0]["state"]["terminated"]
    assert term["exitCode"] == 0 and term["reason"] == "Completed"


def test_graceful_delete_stops_sends_final_status_and_deletes(
    api_node: ApiNode, control_plane: ControlPlane, namespace: str
) -> None:
    cp = control_plane
    api_node.start()
    # sleep as PID 1 ignores SIGTERM (no handler): the grace period is spent, then SIGKILL
    cp.apply(_pod("stubborn", cp.node_name, terminationGracePeriodSeconds=3), namespace)
    wait_api(lambda: _running_pods(cp, namespace, ""), 60, "the pod Running")
    uid = cp.get("pod", "-n", namespace, "stubborn")["metadata"]["uid"]
    cp.kubectl("delete", "pod", "stubborn", "-n", namespace, "--wait=false")
    wait_api(lambda: cp.get("pod", "-n", namespace, "stubborn") is None, 60, "the pod deleted")
    assert not any(p["metadata"]["uid"] == uid for p in api_node.get("/pods")["items"] or [])
    events = cp.get("events", "-n", namespace)["items"]
    reasons = {e["reason"] for e in events if e["involvedObject"].get("uid") == uid}
    assert {"Created", "Started"} <= reasons, reasons


def test_force_delete_stops_at_once(
    api_node: ApiNode, control_plane: ControlPlane, namespace: str
) -> None:
    cp = control_plane
    api_node.start()
    cp.apply(_pod("forced", cp.node_name, terminationGracePeriodSeconds=600), namespace)
    wait_api(lambda: _running_pods(cp, namespace, ""), 60, "the pod Running")
    cp.kubectl("delete", "pod", "forced", "-n", namespace, "--grace-period=0", "--force")
    # the agent's grace for a pod gone from the API is the minimum (2 s), not 600 s
    wait_api(lambda: not api_node.get("/pods")["items"], 30, "the pod stopped on the node")


def test_admission_rejects_with_upstream_reasons(
    api_node: ApiNode, control_plane: ControlPlane, namespace: str
) -> None:
    cp = control_plane
    api_node.start()
    wait_api(lambda: cp.node(), 30, "the Node")
    big = _pod("too-big", cp.node_name)
    big["spec"]["containers"][0]["resources"] = {"requests": {"cpu": "1000"}}
    cp.apply(big, namespace)
    cp.apply(_pod("elsewhere", cp.node_name, nodeSelector={"example.com/zone": "mars"}), namespace)
    cp.apply(
        _pod(
            "plain",
            cp.node_name,
            tolerations=[],
        ),
        namespace,
    )
    failed = wait_api(
        lambda: (
            (
                r := {
                    p["metadata"]["name"]: p["status"]
                    for p in cp.get("pods", "-n", namespace)["items"]
                    if p["status"].get("phase") == "Failed"
                }
            )
            and len(r) == 2
            and r
        ),
        60,
        "two pods Failed",
    )
    assert failed["too-big"]["reason"] == "OutOfcpu"
    assert failed["too-big"]["message"].startswith(
        "Pod Node didn't have enough resource: cpu, requested: 1000000, used: 0, capacity: "
    )
    assert failed["elsewhere"]["reason"] == "NodeAffinity"
    assert failed["elsewhere"]["message"] == "Pod Predicate NodeAffinity failed"
    wait_api(
        lambda: any(
            e["reason"] == "OutOfcpu" and e["type"] == "Warning"
            for e in cp.get("events", "-n", namespace)["items"]
        ),
        30,
        "the OutOfcpu event",
    )
    # the pod without a selector runs
    wait_api(lambda: _running_pods(cp, namespace, ""), 60, "the admitted pod Running")


def test_mirror_pod_for_a_static_pod(
    api_node: ApiNode, control_plane: ControlPlane, namespace: str
) -> None:
    cp = control_plane
    api_node.start()
    node_uid = wait_api(lambda: cp.node(), 30, "the Node")["metadata"]["uid"]
    api_node.write_pod(
        "static",
        f"""apiVersion: v1
kind: Pod
metadata: {{name: static, namespace: {namespace}}}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: c
    image: {IMAGE}
    command: ["sleep", "3600"]
""",
    )
    name = f"static-{cp.node_name}"

    def mirror_running() -> dict[str, Any] | None:
        m = cp.get("pod", "-n", namespace, name)
        return m if m and (m.get("status") or {}).get("phase") == "Running" else None

    mirror = wait_api(mirror_running, 60, "the mirror pod Running in the API")
    md = mirror["metadata"]
    local = next(p for p in api_node.get("/pods")["items"] if p["metadata"]["name"] == name)
    assert md["annotations"]["kubernetes.io/config.mirror"] == local["metadata"]["uid"]
    assert md["uid"] != local["metadata"]["uid"]
    assert md["ownerReferences"] == [
        {
            "apiVersion": "v1",
            "kind": "Node",
            "name": cp.node_name,
            "uid": node_uid,
            "controller": True,
        }
    ]
    container_id = mirror["status"]["containerStatuses"][0]["containerID"]
    assert container_id == local["status"]["containerStatuses"][0]["containerID"]
    # deleted through the API: created again; the static pod keeps running
    cp.kubectl("delete", "pod", "-n", namespace, name, "--wait=false")
    again = wait_api(
        lambda: (m := mirror_running()) and m["metadata"]["uid"] != md["uid"] and m,
        60,
        "the mirror pod re-created",
    )
    assert again["status"]["containerStatuses"][0]["containerID"] == container_id
    # the manifest removed: the mirror pod goes too
    (api_node.pods / "static.yaml").unlink()
    wait_api(lambda: cp.get("pod", "-n", namespace, name) is None, 60, "the mirror pod deleted")


def _static_manifest(namespace: str, name: str, seconds: int) -> str:
    return f"""apiVersion: v1
kind: Pod
metadata: {{name: {name}, namespace: {namespace}}}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: c
    image: {IMAGE}
    command: ["sleep", "{seconds}"]
"""


def test_mirror_pods_follow_static_manifest_changes_at_once(
    control_plane: ControlPlane, namespace: str, api_node: ApiNode
) -> None:
    """A manifest changed, added or removed is followed by its mirror pod without waiting for
    the periodic mirror pass (as upstream, in the pod's next sync)."""
    cp, ns = control_plane, namespace
    # syncFrequency 10m: the periodic mirror pass cannot be what follows the manifests here
    api_node.extra_args += ["--sync-frequency", "10m"]
    api_node.write_pod("changed", _static_manifest(ns, "changed", 3600))
    api_node.write_pod("removed", _static_manifest(ns, "removed", 3600))
    api_node.start()
    changed, added, removed = (f"{n}-{cp.node_name}" for n in ("changed", "added", "removed"))

    def mirror(name: str) -> dict[str, Any] | None:
        m = cp.get("pod", "-n", ns, name)
        if m is None:
            return None
        annotations = m["metadata"].get("annotations") or {}
        hashed = annotations.get("kubernetes.io/config.hash")
        return m if hashed and annotations.get("kubernetes.io/config.mirror") == hashed else None

    def ready(name: str) -> dict[str, Any] | None:
        m = mirror(name)
        return m if (condition(m, "Ready") or {}).get("status") == "True" else None

    # both Ready, so no more status PATCHes (mirror updates that would wake a pass anyway)
    old = wait_api(lambda: ready(changed), 60, "the first mirror pod Ready")
    wait_api(lambda: ready(removed), 60, "the second mirror pod Ready")
    old_hash = old["metadata"]["annotations"]["kubernetes.io/config.hash"]

    api_node.write_pod("changed", _static_manifest(ns, "changed", 3601))
    api_node.write_pod("added", _static_manifest(ns, "added", 3600))
    (api_node.pods / "removed.yaml").unlink()

    def replaced() -> dict[str, Any] | None:
        m = mirror(changed)
        return m if m and m["spec"]["containers"][0]["command"] == ["sleep", "3601"] else None

    new = wait_api(replaced, 60, "the changed manifest's new mirror pod")
    assert new["metadata"]["annotations"]["kubernetes.io/config.hash"] != old_hash
    assert new["metadata"]["uid"] != old["metadata"]["uid"]
    assert wait_api(lambda: mirror(added), 60, "the added manifest's mirror pod")
    wait_api(lambda: cp.get("pod", "-n", ns, removed) is None, 60, "the removed one's mirror gone")


def test_a_rejected_pod_stays_failed_across_a_restart_and_is_deleted(
    api_node: ApiNode, control_plane: ControlPlane, namespace: str
) -> None:
    cp = control_plane
    api_node.start()
    wait_api(lambda: cp.node(), 30, "the Node")
    cp.apply(_pod("elsewhere", cp.node_name, nodeSelector={"example.com/zone": "here"}), namespace)
    wait_api(
        lambda: (
            (cp.get("pod", "-n", namespace, "elsewhere")["status"].get("reason")) == "NodeAffinity"
        ),
        60,
        "the pod rejected",
    )
    # now it would fit; upstream never re-admits a pod the API server has as Failed
    cp.kubectl("label", "node", cp.node_name, "example.com/zone=here")
    api_node.stop()
    api_node.start()
    cp.apply(_pod("probe", cp.node_name), namespace)  # the agent is syncing pods again
    wait_api(lambda: _running_pods(cp, namespace, ""), 60, "another pod Running")
    pod = cp.get("pod", "-n", namespace, "elsewhere")
    assert pod["status"]["phase"] == "Failed" and pod["status"]["reason"] == "NodeAffinity"
    assert not any(p["metadata"]["name"] == "elsewhere" for p in api_node.get("/pods")["items"])
    # deleted through the API: the node sends the final DELETE (nothing to stop)
    cp.kubectl("delete", "pod", "elsewhere", "-n", namespace, "--wait=false")
    wait_api(lambda: cp.get("pod", "-n", namespace, "elsewhere") is None, 30, "the pod deleted")


def test_image_change_under_the_same_uid_restarts_the_container(
    api_node: ApiNode, control_plane: ControlPlane, namespace: str
) -> None:
    cp = control_plane
    api_node.start()
    cp.apply(_pod("img", cp.node_name), namespace)

    def status() -> dict[str, Any]:
        p = cp.get("pod", "-n", namespace, "img") or {}
        cs = (p.get("status") or {}).get("containerStatuses") or [{}]
        return cs[0]  # type: ignore[no-any-return]

    before = wait_api(lambda: (s := status()) and "running" in s.get("state", {}) and s, 60, "run")
    cp.kubectl("set", "image", "pod/img", "-n", namespace, "c=localhost/busybox:latest")
    after = wait_api(
        lambda: (
            (s := status())
            and s.get("image") == "localhost/busybox:latest"
            and "running" in s.get("state", {})
            and s
        ),
        60,
        "the container restarted with the new image",
    )
    assert after["containerID"] != before["containerID"]
    assert after["restartCount"] == 1
