"""hostPort end to end with a real ``pykubelet run``: busybox httpd in a pod answers on
127.0.0.1:<hostPort>; a second pod wanting the same port is rejected with upstream's
``NodePorts`` while the first keeps serving; removing the pod removes its iptables rules; a bad
hostPort is refused naming the field. Runs with the CNI network (bridge + portmap conflist)."""

from __future__ import annotations

import urllib.error
import urllib.request
from typing import Any

import pytest

from tests.conftest import free_port
from tests.e2e.node import Node, wait_for
from tests.podspec.portfix import portmap_rules, sandboxes_forwarding
from tests.prereq import require_binary

pytestmark = pytest.mark.root

WEB = """apiVersion: v1
kind: Pod
metadata: {name: %(name)s}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: c
    image: busybox
    command:
    - sh
    - -c
    - mkdir -p /tmp/www && echo hello-%(name)s > /tmp/www/index.html &&
      exec httpd -f -p 8080 -h /tmp/www
    ports: [{name: http, containerPort: 8080, hostPort: %(port)d, hostIP: 127.0.0.1}]
"""


def _fetch(port: int) -> str:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/index.html", timeout=2) as r:
            return str(r.read().decode())
    except (OSError, urllib.error.URLError):
        return ""


def _status(node: Node, pod: str) -> dict[str, Any]:
    return dict((node.pod(pod) or {}).get("status", {}))


def host_port_scenario(node: Node) -> None:
    """Shared by the CNI and the built-in network variants."""
    require_binary("iptables-save")
    port = free_port()
    node.start()
    node.write_pod("web", WEB % {"name": "web", "port": port})
    wait_for(lambda: "hello-web" in _fetch(port), 60, "httpd reachable on 127.0.0.1:hostPort")
    [pod_before] = [
        p for p in node.get("/pods")["items"] if p["metadata"]["name"].startswith("web")
    ]
    spec_port = pod_before["spec"]["containers"][0]["ports"][0]
    assert spec_port == {
        "name": "http",
        "containerPort": 8080,
        "hostPort": port,
        "hostIP": "127.0.0.1",
        "protocol": "TCP",
    }
    [sid] = sandboxes_forwarding(port)
    assert list(node.root.rglob(f"sandboxes/{sid}/sandbox.json")), "a sandbox of this node"
    assert any("-j DNAT" in r and ":8080" in r for r in portmap_rules(sid))

    # a second pod on the same host port is refused; the first keeps serving
    node.write_pod("clash", WEB % {"name": "clash", "port": port})
    wait_for(lambda: _status(node, "clash").get("phase") == "Failed", 30, "clash rejected")
    st = _status(node, "clash")
    assert st["reason"] == "NodePorts" and st["message"] == "Pod Predicate NodePorts failed"
    assert "hello-web" in _fetch(port)
    assert _status(node, "web")["phase"] == "Running"

    # a bad host port is a clear error naming the field; nothing else is harmed
    node.write_pod("bad", WEB % {"name": "bad", "port": 70000})
    wait_for(lambda: "spec.containers[0].ports[0].hostPort" in node.log(), 30, "the field named")
    assert "must be between 1 and 65535, inclusive" in node.log()
    assert node.pod("bad") is None
    assert "hello-web" in _fetch(port)

    # removing the pod removes its forwarding rules
    assert sandboxes_forwarding(port) == [sid]
    (node.pods / "web.yaml").unlink()
    (node.pods / "clash.yaml").unlink()
    wait_for(lambda: node.pod("web") is None, 60, "web removed")
    wait_for(lambda: portmap_rules(sid) == [], 60, "rules removed")
    wait_for(lambda: _fetch(port) == "", 10, "host port closed")


def test_host_port_with_cni(node: Node) -> None:
    host_port_scenario(node)


def test_host_port_with_the_builtin_network(node: Node) -> None:
    node.cni = False  # no CNI config: BridgeNetwork, which runs portmap for this pod only
    host_port_scenario(node)
    assert "pod network: built-in bridge" in node.log()
    records = node.root / "network" / "portmap"
    wait_for(lambda: not list(records.glob("*.json")), 30, "the portmap record removed")
