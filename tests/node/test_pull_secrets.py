"""A pod's imagePullSecrets read from the API server with the node's identity, used to pull
from a TLS registry with basic auth (docker-registry; tests/images)."""

from __future__ import annotations

from typing import Any

from tests.images.registry import Registry
from tests.node.cluster import ApiNode, ControlPlane, wait_api


def _pod(name: str, node: str, image: str, secrets: list[str]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {
            "nodeName": node,
            "terminationGracePeriodSeconds": 1,
            "imagePullSecrets": [{"name": s} for s in secrets],
            "containers": [{"name": "c", "image": image, "command": ["sleep", "3600"]}],
        },
    }


def _state(cp: ControlPlane, namespace: str, name: str) -> dict[str, Any]:
    p = cp.get("pod", "-n", namespace, name) or {}
    cs = (p.get("status") or {}).get("containerStatuses") or [{}]
    return cs[0].get("state") or {}


def test_image_pull_secret_from_the_api(
    api_node: ApiNode, control_plane: ControlPlane, namespace: str, tls_registry: Registry
) -> None:
    cp = control_plane
    reg = tls_registry
    api_node.extra_args += ["--image-registry-ca-file", reg.ca_file]
    api_node.start()
    cp.kubectl(
        "create", "secret", "docker-registry", "regcred", "-n", namespace,
        f"--docker-server={reg.host}", f"--docker-username={reg.user}",
        f"--docker-password={reg.password}",
    )  # fmt: skip
    image = f"{reg.host}/private/busybox:1.0"
    # first without the secret (once pulled, an IfNotPresent image needs no credentials)
    cp.apply(_pod("without", cp.node_name, image, []), namespace)
    waiting = wait_api(
        lambda: (
            (_state(cp, namespace, "without").get("waiting") or {}).get("reason")
            in ("ErrImagePull", "ImagePullBackOff")
            and _state(cp, namespace, "without")
        ),
        60,
        "the pull without the secret refused",
    )
    assert "running" not in waiting
    cp.apply(_pod("with", cp.node_name, image, ["regcred"]), namespace)
    wait_api(lambda: "running" in _state(cp, namespace, "with"), 90, "pulled with the secret")
