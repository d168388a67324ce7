"""The real agent on both runtimes (process; containerd over CRI): the must-show list."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.e2e.node import Node, wait_for


def pod_yaml(name: str, body: str) -> str:
    if "terminationGracePeriodSeconds" not in body:
        body = "  terminationGracePeriodSeconds: 1\n" + body  # `sleep` as PID 1 ignores SIGTERM
    return f"apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}}}\nspec:\n{body}"


def test_imported_image_runs_and_status_is_complete(node: Node) -> None:
    listed = subprocess.run(
        [
            sys.executable,
            "-m",
            "pykubelet.cli",
            "images",
            "list",
            "--root-dir",
            str(node.root),
            *node.runtime_args(),
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "docker.io/library/busybox:latest" in listed
    node.start()
    node.write_pod(
        "web",
        pod_yaml(
            "web",
            """\
  containers:
  - name: c
    image: busybox
    command: ["sh", "-c", "echo hello $(WHO); exec sleep 3600"]
    env: [{name: WHO, value: e2e}]
""",
        ),
    )
    c = wait_for(
        lambda: (x := node.container("web", "c")) and x["state"].get("running") and x,
        20,
        "web running",
    )
    assert c["containerID"].startswith(f"{node.scheme}://")
    assert c["imageID"] and c["restartCount"] == 0 and c["ready"] is True
    pod = node.pod("web")
    assert pod is not None
    st = pod["status"]
    assert st["phase"] == "Running" and st["hostIP"] and st["podIP"] and st["startTime"]
    assert {x["type"]: x["status"] for x in st["conditions"]} == {
        "Initialized": "True",
        "Ready": "True",
        "ContainersReady": "True",
        "PodScheduled": "True",
    }
    log = node.log_dir(pod) / "c" / "0.log"
    wait_for(lambda: log.exists() and b"hello e2e" in log.read_bytes(), 10, "the CRI log line")
    assert b" stdout F hello e2e\n" in log.read_bytes()


def test_crash_restarts_with_backoff(node: Node) -> None:
    node.start()
    node.write_pod(
        "crash",
        pod_yaml(
            "crash",
            """\
  containers:
  - name: c
    image: busybox
    command: ["sh", "-c", "echo run; exit 3"]
""",
        ),
    )
    t0 = time.monotonic()
    c = wait_for(
        lambda: (x := node.container("crash", "c")) and x["restartCount"] >= 2 and x,
        40,
        "two restarts",
    )
    # first restart at once, the second only after the 10 s back-off
    assert time.monotonic() - t0 >= 10
    wait_for(
        lambda: (node.container("crash", "c") or {}).get("state", {}).get("waiting"),
        10,
        "waiting state",
    )
    c = node.container("crash", "c")
    assert c is not None
    assert c["state"]["waiting"]["reason"] == "CrashLoopBackOff"
    assert c["lastState"]["terminated"]["exitCode"] == 3
    assert c["lastState"]["terminated"]["reason"] == "Error"
    pod = node.pod("crash")
    assert pod is not None and pod["status"]["phase"] == "Running"
    logs = node.log_dir(pod) / "c"
    assert {"0.log", "1.log"} <= set(os.listdir(logs))


def test_oom_kill_under_a_memory_limit(node: Node) -> None:
    node.start()
    node.write_pod(
        "hog",
        pod_yaml(
            "hog",
            """\
  restartPolicy: Never
  containers:
  - name: c
    image: busybox
    command: ["sh", "-c", "dd if=/dev/zero of=/dev/null bs=200M count=1"]
    resources: {limits: {memory: 32Mi}}
""",
        ),
    )
    pod = wait_for(
        lambda: (p := node.pod("hog")) and p["status"]["phase"] == "Failed" and p,
        30,
        "the pod to fail",
    )
    [c] = pod["status"]["containerStatuses"]
    assert c["state"]["terminated"]["reason"] == "OOMKilled"
    assert c["state"]["terminated"]["exitCode"] == 137


def test_init_containers_run_in_order_before_the_app(node: Node) -> None:
    node.start()
    node.write_pod(
        "init",
        pod_yaml(
            "init",
            """\
  initContainers:
  - {name: first, image: busybox, command: ["sh", "-c", "sleep 1; echo first"]}
  - {name: second, image: busybox, command: ["sh", "-c", "echo second"]}
  containers:
  - {name: app, image: busybox, command: ["sh", "-c", "echo app; exec sleep 3600"]}
""",
        ),
    )
    pod = wait_for(
        lambda: (p := node.pod("init")) and p["status"]["phase"] == "Running" and p,
        30,
        "the app to run",
    )
    inits = {c["name"]: c for c in pod["status"]["initContainerStatuses"]}
    assert inits["first"]["state"]["terminated"]["reason"] == "Completed"
    assert inits["second"]["state"]["terminated"]["reason"] == "Completed"
    assert (
        inits["first"]["state"]["terminated"]["finishedAt"]
        <= (inits["second"]["state"]["terminated"]["startedAt"])
    )
    [app] = pod["status"]["containerStatuses"]
    assert (
        inits["second"]["state"]["terminated"]["finishedAt"] <= app["state"]["running"]["startedAt"]
    )


def test_graceful_stop_waits_for_the_grace_period_then_kills(node: Node) -> None:
    node.start()
    path = node.write_pod(
        "stubborn",
        pod_yaml(
            "stubborn",
            """\
  terminationGracePeriodSeconds: 3
  containers:
  - name: c
    image: busybox
    command: ["sh", "-c", "trap '' TERM; while true; do sleep 1; done"]
""",
        ),
    )
    wait_for(
        lambda: (node.container("stubborn", "c") or {}).get("state", {}).get("running"),
        20,
        "running",
    )
    host_pids = _host_pids_of(node)
    assert host_pids
    t0 = time.monotonic()
    path.unlink()
    wait_for(lambda: node.pod("stubborn") is None, 5, "the pod to leave /pods")
    wait_for(lambda: not any(_alive(p) for p in host_pids), 15, "the container to die")
    elapsed = time.monotonic() - t0
    assert elapsed >= 3, elapsed


def _host_pids_of(node: Node, *, long_lived: bool = False) -> list[int]:
    """Processes in the node's cgroups; ``long_lived`` leaves out the loops' ``sleep 1``."""
    pids = list(node._cgroup_pids())
    if long_lived:
        pids = [p for p in pids if _comm(p) not in ("sleep", "")]
    return pids


def _comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def test_agent_sigkill_and_restart_keeps_containers_and_logs(node: Node) -> None:
    node.start()
    node.write_pod(
        "counter",
        pod_yaml(
            "counter",
            """\
  containers:
  - name: c
    image: busybox
    command: ["sh", "-c", "i=0; while true; do echo n=$i; i=$((i+1)); sleep 1; done"]
""",
        ),
    )
    before = wait_for(
        lambda: (x := node.container("counter", "c")) and x["state"].get("running") and x,
        20,
        "running",
    )
    pod = node.pod("counter")
    assert pod is not None
    log = node.log_dir(pod) / "c" / "0.log"
    pids = _host_pids_of(node, long_lived=True)
    assert pids
    node.stop(signal.SIGKILL)
    size = log.stat().st_size
    wait_for(lambda: log.stat().st_size > size, 5, "the container to keep logging")
    assert all(_alive(p) for p in pids)
    node.start()
    after = wait_for(
        lambda: (x := node.container("counter", "c")) and x["state"].get("running") and x,
        20,
        "adopted",
    )
    assert after["containerID"] == before["containerID"]
    assert after["restartCount"] == 0
    assert set(_host_pids_of(node, long_lived=True)) >= set(pids)
    assert sorted(os.listdir(log.parent)) == ["0.log"]
    assert b"n=0\n" in log.read_bytes()


def test_bad_manifest_beside_good_ones(node: Node) -> None:
    node.write_pod(
        "good",
        pod_yaml(
            "good",
            """\
  containers:
  - {name: c, image: busybox, command: ["sleep", "3600"]}
""",
        ),
    )
    node.write_pod("bad", pod_yaml("bad", "  containers:\n  - {name: c}\n"))
    (node.pods / "broken.yaml").write_text("apiVersion: v1\nkind: Pod\nmetadata: [\n")
    node.start()
    wait_for(
        lambda: (node.container("good", "c") or {}).get("state", {}).get("running"),
        20,
        "the good pod",
    )
    assert node.pod("bad") is None
    log = node.log()
    assert "bad.yaml: spec.containers[0].image: Required value" in log
    assert "broken.yaml: not valid YAML" in log
    # fixing the file later starts it, and the good pod is untouched
    good_id = (node.container("good", "c") or {})["containerID"]
    node.write_pod(
        "bad",
        pod_yaml(
            "bad",
            """\
  containers:
  - {name: c, image: busybox, command: ["sleep", "3600"]}
""",
        ),
    )
    wait_for(
        lambda: (node.container("bad", "c") or {}).get("state", {}).get("running"),
        20,
        "the fixed pod",
    )
    assert (node.container("good", "c") or {})["containerID"] == good_id
