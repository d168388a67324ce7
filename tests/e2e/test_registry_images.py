"""Static pods whose images come from a real registry (Debian's docker-registry over TLS with
htpasswd basic auth), through a real ``pykubelet run``: credentials from ``--docker-config-file``,
the registry's CA from ``--image-registry-ca-file``; pull failures show in the pod status."""

from __future__ import annotations

import json

from tests.e2e.node import Node, wait_for
from tests.e2e.test_standalone import pod_yaml
from tests.images.conftest import test_layout, tls_registry
from tests.images.registry import Registry

__all__ = ["test_layout", "tls_registry"]  # session fixtures shared with tests/images


def _start(node: Node, reg: Registry, password: str) -> None:
    config = node.base / "docker-config.json"
    config.write_text(
        json.dumps({"auths": {reg.host: {"username": reg.user, "password": password}}})
    )
    node.extra_args += ["--docker-config-file", str(config)]
    if node.containerd is not None:
        node.containerd.trust_registry(reg.host, reg.ca_file)  # containerd's own TLS trust
    else:
        node.extra_args += ["--image-registry-ca-file", reg.ca_file]
    node.start()


def _waiting(node: Node, pod: str) -> str:
    c = node.container(pod, "c")
    return str(c["state"].get("waiting", {}).get("reason", "")) if c else ""


def test_static_pod_runs_an_image_from_a_private_registry(
    node: Node, tls_registry: Registry
) -> None:
    _start(node, tls_registry, tls_registry.password)
    image = f"{tls_registry.host}/private/busybox:1.0"
    node.write_pod(
        "pulled",
        pod_yaml(
            "pulled",
            f"""\
  containers:
  - name: c
    image: {image}
    command: ["sh", "-c", "echo from-registry; exec sleep 3600"]
""",
        ),
    )
    c = wait_for(
        lambda: (x := node.container("pulled", "c")) and x["state"].get("running") and x,
        60,
        "the pulled pod running",
    )
    assert c["image"] == image and c["imageID"]
    # a missing tag: ErrImagePull, then ImagePullBackOff; Never with a missing image
    node.write_pod(
        "missing",
        pod_yaml("missing", f"  containers:\n  - name: c\n    image: {image}-nope\n"),
    )
    node.write_pod(
        "never",
        pod_yaml(
            "never",
            f"  containers:\n  - name: c\n    image: {tls_registry.host}/private/other:1\n"
            "    imagePullPolicy: Never\n",
        ),
    )
    wait_for(lambda: _waiting(node, "never") == "ErrImageNeverPull", 30, "ErrImageNeverPull")
    reasons: set[str] = set()

    def backed_off() -> bool:
        reasons.add(_waiting(node, "missing"))
        return "ImagePullBackOff" in reasons

    wait_for(backed_off, 30, "ImagePullBackOff")
    c = node.container("missing", "c")
    assert c is not None
    assert c["state"]["waiting"]["message"] == f'Back-off pulling image "{image}-nope"'


def test_wrong_password_is_err_image_pull(node: Node, tls_registry: Registry) -> None:
    _start(node, tls_registry, "wrong-password")
    image = f"{tls_registry.host}/private/busybox:1.0"
    node.write_pod(
        "denied", pod_yaml("denied", f"  containers:\n  - name: c\n    image: {image}\n")
    )

    def err() -> str:
        c = node.container("denied", "c")
        w = c["state"].get("waiting", {}) if c else {}
        return str(w.get("message", "")) if w.get("reason") == "ErrImagePull" else ""

    assert "unauthorized" in wait_for(err, 30, "ErrImagePull").lower()
