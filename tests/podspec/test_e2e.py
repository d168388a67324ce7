"""The pod spec end to end: a real ``pykubelet run`` (process runtime, real CNI plugins) runs
busybox pods; everything is read back over the kubelet API and from container logs."""

from __future__ import annotations

import ipaddress
import json
import os
import signal
import subprocess
from pathlib import Path
from typing import Any

import pytest

from pykubelet.network import DEFAULT_BRIDGE, DEFAULT_SUBNET, host_veth_name
from tests.e2e.conftest import RUNTIMES
from tests.e2e.node import Node, wait_for
from tests.podspec.netfix import TestNet, private_network

pytestmark = pytest.mark.root


def _log(node: Node, pod: str, container: str) -> str:
    p = node.pod(pod)
    if p is None:
        return ""
    files = sorted((node.log_dir(p) / container).glob("*.log"))
    return "".join(f.read_text(errors="replace") for f in files)


def _running(node: Node, pod: str, container: str = "c") -> dict[str, Any] | None:
    c = node.container(pod, container)
    return c if c is not None and "running" in c["state"] else None


def _condition(node: Node, pod: str, kind: str) -> str:
    p = node.pod(pod) or {}
    for c in p.get("status", {}).get("conditions", []):
        if c["type"] == kind:
            return str(c["status"])
    return ""


SERVER = """apiVersion: v1
kind: Pod
metadata: {name: server, labels: {app: web}}
spec:
  terminationGracePeriodSeconds: 2
  containers:
  - name: c
    image: busybox
    command:
    - sh
    - -c
    - >-
      mkdir -p /tmp/www && echo hello-from-server > /tmp/www/index.html &&
      exec httpd -f -p 8080 -h /tmp/www
    ports: [{name: http, containerPort: 8080}]
    readinessProbe:
      httpGet: {path: /index.html, port: http}
      periodSeconds: 1
"""

CLIENT = """apiVersion: v1
kind: Pod
metadata: {name: client}
spec:
  terminationGracePeriodSeconds: 2
  containers:
  - name: c
    image: busybox
    command:
    - sh
    - -c
    - >-
      until wget -qO- http://$(SERVER_IP):8080/index.html; do sleep 0.2; done;
      sleep 3600
    env: [{name: SERVER_IP, value: "%s"}]
"""


def test_pods_get_cni_addresses_and_reach_each_other(node: Node, tmp_path: Path) -> None:
    # a network of this test's own (bridge, subnet), given the way an operator would: a conf dir
    with private_network(tmp_path) as net:
        conf_dir = tmp_path / "net.d"
        conf_dir.mkdir()
        (conf_dir / "10-test.conflist").write_text(json.dumps(net.conf.to_json()))
        node.extra_args += ["--cni-conf-dir", str(conf_dir)]
        _pods_talk(node, net)


def _pods_talk(node: Node, net: TestNet) -> None:
    node.start()
    node.write_pod("server", SERVER)
    server = wait_for(lambda: _running(node, "server"), 60, "server running")
    assert server is not None
    wait_for(lambda: _condition(node, "server", "Ready") == "True", 30, "server ready (probe)")
    status = (node.pod("server") or {})["status"]
    ip = status["podIP"]
    assert ip.startswith(net.subnet_prefix)
    assert status["podIPs"] == [{"ip": ip}]
    assert (node.container("server", "c") or {})["ready"] is True
    node.write_pod("client", CLIENT % ip)
    wait_for(lambda: "hello-from-server" in _log(node, "client", "c"), 60, "client fetched")
    client_ip = (node.pod("client") or {})["status"]["podIP"]
    assert client_ip != ip
    # addresses are released with the pods
    for f in list(node.pods.iterdir()):
        f.unlink()
    wait_for(lambda: not (node.get("/pods")["items"] or []), 60, "pods removed")
    store = net.data_dir / "pykubelet"
    wait_for(
        lambda: not (store / ip).exists() and not (store / client_ip).exists(),
        60,
        "addresses released",
    )
    wait_for(
        lambda: not list((node.root / "cni" / "attachments").glob("*.json")),
        60,
        "attachment records removed",
    )


def test_builtin_network_when_no_cni_config_is_found(node: Node) -> None:
    # a node without any CNI config: the agent's own bridge network, no plugin runs
    node.cni = False
    node.start()
    assert "pod network: built-in bridge pykbr0" in node.log()
    node.write_pod("server", SERVER)
    wait_for(lambda: _condition(node, "server", "Ready") == "True", 60, "server ready (probe)")
    ip = (node.pod("server") or {})["status"]["podIP"]
    assert ipaddress.ip_address(ip) in ipaddress.ip_network(DEFAULT_SUBNET)
    store = node.root / "network" / "addresses"
    sandbox_id = (store / ip).read_text().strip()
    assert len(sandbox_id) == 64  # the sandbox holds the address
    veth = host_veth_name(sandbox_id)
    assert f"master {DEFAULT_BRIDGE}" in _ip("link", "show", veth)
    node.write_pod("client", CLIENT % ip)
    wait_for(lambda: "hello-from-server" in _log(node, "client", "c"), 60, "client fetched")
    client_ip = (node.pod("client") or {})["status"]["podIP"]
    assert client_ip != ip and (store / client_ip).exists()
    assert not (node.root / "cni").exists()  # no CNI state at all
    for f in list(node.pods.iterdir()):
        f.unlink()
    wait_for(lambda: not (node.get("/pods")["items"] or []), 60, "pods removed")
    wait_for(lambda: not list(store.iterdir()), 60, "addresses released")
    assert _ip("link", "show", veth) == ""  # the host veth went with the sandbox


def test_builtin_network_survives_an_agent_sigkill(node: Node) -> None:
    node.cni = False
    node.start()
    node.write_pod("server", SERVER)
    wait_for(lambda: _condition(node, "server", "Ready") == "True", 60, "server ready (probe)")
    ip = (node.pod("server") or {})["status"]["podIP"]
    node.stop(signal.SIGKILL)  # no teardown of anything; the server keeps running
    node.start()
    # the new agent adopts the server with its address, and hands the next pod another one
    wait_for(lambda: _condition(node, "server", "Ready") == "True", 60, "server adopted")
    assert (node.pod("server") or {})["status"]["podIP"] == ip
    node.write_pod("client", CLIENT % ip)
    wait_for(lambda: "hello-from-server" in _log(node, "client", "c"), 60, "client fetched")
    client_ip = (node.pod("client") or {})["status"]["podIP"]
    assert client_ip != ip
    store = node.root / "network" / "addresses"
    assert sorted(p.name for p in store.iterdir()) == sorted([ip, client_ip])


def _ip(*args: str) -> str:
    return subprocess.run(["ip", *args], capture_output=True, text=True).stdout


LIVENESS = """apiVersion: v1
kind: Pod
metadata: {name: live}
spec:
  terminationGracePeriodSeconds: 2
  containers:
  - name: c
    image: busybox
    command: [sh, -c, "touch /tmp/healthy; sleep 2; rm /tmp/healthy; sleep 3600"]
    livenessProbe:
      exec: {command: [test, -e, /tmp/healthy]}
      periodSeconds: 1
      failureThreshold: 1
      terminationGracePeriodSeconds: 1
"""


@pytest.mark.parametrize("node", RUNTIMES, indirect=True)
def test_failing_liveness_probe_restarts_the_container(node: Node) -> None:
    node.start()
    node.write_pod("live", LIVENESS)
    wait_for(
        lambda: (node.container("live", "c") or {}).get("restartCount", 0) >= 1,
        90,
        "a restart after the liveness probe failed",
    )
    assert "failed liveness probe, will be restarted" in node.log()


SECURE = """apiVersion: v1
kind: Pod
metadata: {name: secure, labels: {tier: backend}}
spec:
  terminationGracePeriodSeconds: 2
  securityContext: {runAsUser: 1000, runAsGroup: 3000, runAsNonRoot: true}
  volumes:
  - {name: scratch, emptyDir: {}}
  - name: info
    downwardAPI:
      items: [{path: labels, fieldRef: {fieldPath: metadata.labels}}]
  containers:
  - name: c
    image: busybox
    command:
    - sh
    - -c
    - >-
      id; touch /rootfs-probe || echo ROOTFS-READONLY;
      touch /scratch/ok && echo SCRATCH-WRITABLE;
      cat /etc/podinfo/labels; echo;
      echo PODINFO-FS=$(awk '$5 == "/etc/podinfo" {print $(NF-2)}' /proc/self/mountinfo);
      echo NAME=$MY_NAME IP=$MY_IP MEM=$MEM_MI; sleep 3600
    env:
    - {name: MY_NAME, valueFrom: {fieldRef: {fieldPath: metadata.name}}}
    - {name: MY_IP, valueFrom: {fieldRef: {fieldPath: status.podIP}}}
    - {name: MEM_MI, valueFrom: {resourceFieldRef: {resource: limits.memory, divisor: 1Mi}}}
    resources: {limits: {memory: 64Mi}}
    securityContext: {readOnlyRootFilesystem: true, allowPrivilegeEscalation: false}
    volumeMounts:
    - {name: scratch, mountPath: /scratch}
    - {name: info, mountPath: /etc/podinfo}
"""


@pytest.mark.parametrize("node", RUNTIMES, indirect=True)
def test_non_root_container_on_read_only_rootfs_with_volumes_and_downward_api(
    node: Node,
) -> None:
    node.start()
    node.write_pod("secure", SECURE)
    wait_for(lambda: "NAME=" in _log(node, "secure", "c"), 60, "the container's report")
    log = _log(node, "secure", "c")
    ip = (node.pod("secure") or {})["status"]["podIP"]
    assert "uid=1000 gid=3000" in log
    assert "Read-only file system" in log and "ROOTFS-READONLY" in log
    assert "SCRATCH-WRITABLE" in log
    assert 'tier="backend"' in log
    assert "PODINFO-FS=tmpfs\n" in log  # the host's tmpfs, bound in by either runtime
    assert f"NAME=secure-{node_name()} IP={ip} MEM=64" in log


PODIP = """apiVersion: v1
kind: Pod
metadata: {name: podip}
spec:
  terminationGracePeriodSeconds: 2
  containers:
  - name: c
    image: busybox
    command: [sh, -c, 'echo IP=$MY_IP; exec sleep 3600']
    env:
    - {name: MY_IP, valueFrom: {fieldRef: {fieldPath: status.podIP}}}
"""


def _holder_pid(node: Node) -> int:
    [record] = (node.root / "runtime" / "sandboxes").glob("*/sandbox.json")
    return int(json.loads(record.read_text())["holder_pid"])


def test_a_recreated_sandbox_gives_its_new_ip_to_the_containers_env(node: Node) -> None:
    node.start()
    node.write_pod("podip", PODIP)
    first = wait_for(lambda: _running(node, "podip"), 60, "the container running")
    ip1 = (node.pod("podip") or {})["status"]["podIP"]
    assert f"IP={ip1}\n" in _log(node, "podip", "c")
    os.kill(_holder_pid(node), signal.SIGKILL)  # the pod's namespaces are gone with it

    def restarted() -> dict[str, Any] | None:
        c = _running(node, "podip")
        return c if c is not None and c["containerID"] != first["containerID"] else None

    wait_for(restarted, 60, "the container restarted in a new sandbox")
    ip2 = (node.pod("podip") or {})["status"]["podIP"]
    assert ip2 and ip2 != ip1  # host-local hands out addresses round robin
    wait_for(lambda: f"IP={ip2}\n" in _log(node, "podip", "c"), 30, "the new IP in the env")


REFUSED = """apiVersion: v1
kind: Pod
metadata: {name: refused}
spec:
  containers:
  - name: root
    image: busybox
    command: [sleep, "3600"]
    securityContext: {runAsNonRoot: true, runAsUser: 0}
  - name: cfg
    image: busybox
    command: [sleep, "3600"]
    env: [{name: X, valueFrom: {configMapKeyRef: {name: settings, key: x}}}]
"""


@pytest.mark.parametrize("node", RUNTIMES, indirect=True)
def test_run_as_non_root_and_config_map_refs_are_refused(node: Node) -> None:
    node.start()
    node.write_pod("refused", REFUSED)

    def waiting(name: str) -> dict[str, Any] | None:
        c = node.container("refused", name) or {}
        w = c.get("state", {}).get("waiting")
        return w if w and w.get("reason") == "CreateContainerConfigError" else None

    root = wait_for(lambda: waiting("root"), 60, "root refused")
    assert "container's runAsUser breaks non-root policy" in root["message"]
    cfg = wait_for(lambda: waiting("cfg"), 60, "configMap ref refused")
    assert "standalone node" in cfg["message"]


def node_name() -> str:
    from tests.e2e.node import NODE

    return NODE


MESSAGES = """apiVersion: v1
kind: Pod
metadata: {name: msgs}
spec:
  restartPolicy: Never
  containers:
  - name: fallback
    image: busybox
    # containerd copies stdout and stderr on separate pipes: lines of the two streams written
    # at once may reach the log in either order, so the second waits a moment
    command: [sh, -c, "echo working; sleep 0.2; echo boom >&2; exit 3"]
    terminationMessagePolicy: FallbackToLogsOnError
  - name: file
    image: busybox
    command: [sh, -c, "echo quiet; exit 4"]
  - name: writes
    image: busybox
    command: [sh, -c, "printf 'disk full' > /dev/termination-log; exit 5"]
  - name: custom
    image: busybox
    command: [sh, -c, "echo done-fine > /tmp/msg; echo logged"]
    terminationMessagePath: /tmp/msg
    terminationMessagePolicy: FallbackToLogsOnError
"""


@pytest.mark.parametrize("node", RUNTIMES, indirect=True)
def test_termination_messages_from_the_file_and_from_logs(node: Node) -> None:
    node.start()
    node.write_pod("msgs", MESSAGES)

    def terminated(name: str) -> dict[str, Any] | None:
        t = (node.container("msgs", name) or {}).get("state", {}).get("terminated")
        return t if t else None

    fb = wait_for(lambda: terminated("fallback"), 60, "fallback container terminated")
    assert fb["exitCode"] == 3 and fb["message"] == "working\nboom\n"
    plain = wait_for(lambda: terminated("file"), 60, "file container terminated")
    assert plain["exitCode"] == 4 and "message" not in plain
    # the terminationMessagePath file wins, whatever the exit code and the policy
    wrote = wait_for(lambda: terminated("writes"), 60, "writes container terminated")
    assert wrote["exitCode"] == 5 and wrote["message"] == "disk full"
    custom = wait_for(lambda: terminated("custom"), 60, "custom container terminated")
    assert custom["exitCode"] == 0 and custom["message"] == "done-fine\n"


NOT_READY = """apiVersion: v1
kind: Pod
metadata: {name: unready}
spec:
  terminationGracePeriodSeconds: 2
  containers:
  - name: c
    image: busybox
    command: [sleep, "3600"]
    readinessProbe:
      exec: {command: ["false"]}
      periodSeconds: 1
      failureThreshold: 1
"""


@pytest.mark.parametrize("node", RUNTIMES, indirect=True)
def test_failing_readiness_keeps_the_pod_unready_without_restarts(node: Node) -> None:
    node.start()
    node.write_pod("unready", NOT_READY)
    wait_for(lambda: _running(node, "unready"), 60, "container running")
    c = node.container("unready", "c") or {}
    assert c["ready"] is False and c["restartCount"] == 0 and "running" in c["state"]
    assert _condition(node, "unready", "Ready") == "False"
    assert _condition(node, "unready", "ContainersReady") == "False"
