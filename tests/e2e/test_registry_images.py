"""Static pods whose images come from a real registry (Debian's docker-registry over TLS with
htpasswd basic auth), through a real ``pykubelet run``: credentials from ``--docker-config-file``,
the registry's CA from ``--image-registry-ca-file``; pull failures show in the pod status."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.e2e.node import Node, wait_for
from tests.e2e.test_standalone import pod_yaml
from tests.images.registry import Registry


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


def test_image_gc_at_start_keeps_images_in_use(node: Node, plain_registry: Registry) -> None:
    """Thresholds 1 % / 0 % and no minimum age: at start the agent's GC removes every image no
    container uses. The running pod's image (imported busybox) stays; a pulled unused one goes."""
    if node.containerd is not None:
        node.containerd.plain_http_registry(plain_registry.host)
    node.start()
    node.write_pod(
        "user",
        pod_yaml(
            "user", "  containers:\n  - name: c\n    image: busybox\n    command: [sleep, '3600']\n"
        ),
    )
    wait_for(
        lambda: (x := node.container("user", "c")) and x["state"].get("running"), 20, "user running"
    )
    node.stop()
    unused = f"{plain_registry.host}/test/sleeper:1.0"
    pulled = subprocess.run(
        [sys.executable, "-m", "pykubelet.cli", "images", "pull", unused, *_store(node)],
        capture_output=True,
        text=True,
    )
    assert pulled.returncode == 0, pulled.stderr
    assert unused in _images(node)
    node.extra_args += [
        "--image-gc-high-threshold",
        "1",
        "--image-gc-low-threshold",
        "0",
        "--minimum-image-ttl-duration",
        "0s",
    ]
    node.start()
    wait_for(lambda: unused not in _images(node), 20, "the unused image collected")
    assert "busybox" in _images(node)
    c = node.container("user", "c")
    assert c is not None and c["state"].get("running") and c["restartCount"] == 0


def _images(node: Node) -> str:
    return subprocess.run(
        [sys.executable, "-m", "pykubelet.cli", "images", "list", *_store(node)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout


def _store(node: Node) -> list[str]:
    """The image store the node's runtime uses: containerd's over CRI, or the process runtime's."""
    if node.containerd is not None:
        return ["--container-runtime-endpoint", f"unix://{node.containerd.socket}"]
    return ["--root-dir", str(node.root)]
