"""Faults: the API server restarted under a running node, and unreachable when it starts."""

from __future__ import annotations

import os
import signal
import socket
import threading
import time
from pathlib import Path
from typing import Any

import yaml

from tests.conftest import free_port
from tests.node.cluster import IMAGE, ApiNode, ControlPlane, condition, wait_api


def _sleeper(name: str, node: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {
            "nodeName": node,
            "terminationGracePeriodSeconds": 1,
            "containers": [{"name": "c", "image": IMAGE, "command": ["sleep", "3600"]}],
        },
    }


def _container(cp: ControlPlane, namespace: str, name: str) -> dict[str, Any] | None:
    p = cp.get("pod", "-n", namespace, name)
    cs = ((p or {}).get("status") or {}).get("containerStatuses") or []
    return cs[0] if cs and "running" in cs[0]["state"] else None


def test_api_server_restart_resumes_the_watch_without_restarting_containers(
    api_node: ApiNode, control_plane: ControlPlane, namespace: str
) -> None:
    cp = control_plane
    api_node.extra_args += ["--sync-frequency", "10m"]  # ConfigMap updates: by the watch only
    api_node.start()
    cp.kubectl("create", "configmap", "cfg", "-n", namespace, "--from-literal=k=1")
    pod = _sleeper("before", cp.node_name)
    pod["spec"]["volumes"] = [{"name": "cfg", "configMap": {"name": "cfg"}}]
    pod["spec"]["containers"][0]["volumeMounts"] = [{"name": "cfg", "mountPath": "/cfg"}]
    cp.apply(pod, namespace)
    before = wait_api(lambda: _container(cp, namespace, "before"), 60, "the pod Running")
    pid_file = cp.dir / "run" / "kube-apiserver.pid"
    pid = int(pid_file.read_text())
    # the stack's own apiserver, by its pid file, killed outright: a graceful stop drains its
    # watches for up to a minute, a crash breaks them at once (the harder case for the node)
    os.kill(pid, signal.SIGKILL)
    wait_api(lambda: not Path(f"/proc/{pid}").exists(), 20, "kube-apiserver killed")
    time.sleep(3)  # the node sees the API server gone (watch broken, heartbeats failing)
    cp.start()  # start.sh starts what is not running: the apiserver
    cp.apply(_sleeper("after", cp.node_name), namespace)
    wait_api(lambda: _container(cp, namespace, "after"), 90, "a new pod Running (watch resumed)")
    same = _container(cp, namespace, "before")
    assert same is not None
    assert same["containerID"] == before["containerID"] and same["restartCount"] == 0
    assert condition(cp.node(), "Ready")["status"] == "True"  # type: ignore[index]
    # the ConfigMap's watch came back too: an update reaches the running pod's file
    cp.kubectl("patch", "configmap", "cfg", "-n", namespace, "-p", '{"data":{"k":"2"}}')
    wait_api(
        lambda: (
            cp.kubectl("exec", "-n", namespace, "before", "--", "cat", "/cfg/k", check=False) == "2"
        ),
        60,
        "the ConfigMap update after the API server restart",
    )


class _Forwarder:
    """A TCP relay from a local port to the API server, switched on later: an API server
    that is down when the agent starts, then comes up."""

    def __init__(self, port: int, target: tuple[str, int]) -> None:
        self.port = port
        self.target = target
        self._server: socket.socket | None = None
        self._stop = threading.Event()

    def start(self) -> None:
        srv = socket.socket()
        srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        srv.bind(("127.0.0.1", self.port))
        srv.listen(16)
        srv.settimeout(0.2)
        self._server = srv
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        assert self._server is not None
        while not self._stop.is_set():
            try:
                client, _ = self._server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    def _pipe(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def close(self) -> None:
        self._stop.set()
        if self._server is not None:
            self._server.close()


def test_api_server_down_at_start_static_pods_run_then_the_node_joins(
    tmp_path: Path, stack_image: Path, control_plane: ControlPlane, namespace: str
) -> None:
    cp = control_plane
    port = free_port()
    kubeconfig = yaml.safe_load((cp.dir / "kubelet.kubeconfig").read_text())
    for cluster in kubeconfig["clusters"]:
        cluster["cluster"]["server"] = f"https://127.0.0.1:{port}"
    path = tmp_path / "down.kubeconfig"
    path.write_text(yaml.safe_dump(kubeconfig))
    node = ApiNode(tmp_path / "node", stack_image, cp, "--kubeconfig", str(path))
    relay = _Forwarder(port, ("127.0.0.1", 6443))
    try:
        node.start()
        node.write_pod(
            "static",
            f"apiVersion: v1\nkind: Pod\nmetadata: {{name: static, namespace: {namespace}}}\n"
            f"spec:\n  terminationGracePeriodSeconds: 1\n  containers:\n  - name: c\n"
            f"    image: {IMAGE}\n    command: [sleep, '3600']\n",
        )
        name = f"static-{cp.node_name}"

        def running() -> dict[str, Any] | None:
            for p in node.get("/pods")["items"] or []:
                cs = p["metadata"]["name"] == name and p["status"].get("containerStatuses")
                if cs and "running" in cs[0]["state"]:
                    return cs[0]  # type: ignore[no-any-return]
            return None

        wait_for_running = wait_api(running, 60, "the static pod running with no API server")
        assert cp.node() is None
        assert "unable to register node" in node.log()
        relay.start()
        wait_api(lambda: condition(cp.node(), "Ready"), 60, "the node registered once reachable")
        mirror = wait_api(
            lambda: (
                (m := cp.get("pod", "-n", namespace, name))
                and (m.get("status") or {}).get("phase") == "Running"
                and m
            ),
            60,
            "the mirror pod",
        )
        cs = mirror["status"]["containerStatuses"][0]
        assert cs["containerID"] == wait_for_running["containerID"]
        assert cs["restartCount"] == 0
    finally:
        node.cleanup()
        relay.close()
        cp.delete_node()
