"""pykubelet with one static pod (containers ``main``, ``echo`` on ECHO_PORT, ``logger``,
``term`` with a terminal, ``crasher`` restarting),
its Node object and mirror pod made by hand in the API server, for kubectl tests and the
benchmark. The API server reaches the kubelet at 127.0.0.1 and verifies its serving
certificate (signed by the cluster CA)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from pykubelet.security.certs import create_serving_cert
from tests.apiserver.controlplane import ApiError, ControlPlane, kubeconfig
from tests.apiserver.kubelet import NODE, ClusterNode, node_credentials
from tests.e2e.node import wait_for

__all__ = ["ECHO_PORT", "MIRROR", "POD", "node_with_pod"]

POD = "tty"
ECHO_PORT = 8080
MIRROR = f"{POD}-{NODE}"


@contextmanager
def node_with_pod(cp: ControlPlane, base: Path, *extra: str) -> Iterator[tuple[ClusterNode, Path]]:
    """The running node and an admin kubeconfig; everything removed afterwards. ``extra``:
    more ``pykubelet run`` flags (they win)."""
    from devtools.busybox_image import build_busybox_image

    image = build_busybox_image(base / "busybox.tar", ref="docker.io/library/busybox:latest")
    serving = create_serving_cert(str(base / "serving"), NODE, ca=cp.ca)
    kc = node_credentials(cp, base)
    node = ClusterNode(base=base / "node", image_tar=image, cni=False, verify_server=False)
    node.client = cp.kubelet_client
    cli = [sys.executable, "-m", "pykubelet.cli"]
    subprocess.run(
        [*cli, "images", "import", "--root-dir", str(node.root), str(image)],
        check=True,
        capture_output=True,
    )
    node.write_pod(
        POD,
        "apiVersion: v1\nkind: Pod\nmetadata: {name: tty, namespace: default}\n"
        "spec:\n  terminationGracePeriodSeconds: 1\n  containers:\n"  # PID 1 ignores SIGTERM
        "  - {name: main, image: busybox, command: [sleep, '3600']}\n"
        f"  - {{name: echo, image: busybox, command: [nc, -ll, -p, '{ECHO_PORT}', -e, cat]}}\n"
        "  - name: logger\n    image: busybox\n"
        "    command: [sh, -c, 'for i in $(seq 1 50); do echo line-$i; done; sleep 3600']\n"
        "  - {name: term, image: busybox, command: [sh], stdin: true, tty: true}\n"
        "  - name: crasher\n    image: busybox\n"
        "    command: [sh, -c, 'echo run-$RANDOM; sleep 5; exit 1']\n",
    )
    node.extra_args = [
        "--client-ca-file",
        cp.ca.cert_file,
        "--tls-cert-file",
        serving.cert_file,
        "--tls-private-key-file",
        serving.key_file,
        "--kubeconfig",
        str(kc),
        "--authorization-mode",
        "Webhook",
        "--node-ip",
        "127.0.0.1",  # the InternalIP the API server dials: where the agent listens
        *extra,
    ]
    admin = kubeconfig(
        base / "admin.kubeconfig", server=cp.server, ca_file=cp.ca.cert_file, cert=cp.admin
    )
    try:
        node.start()
        wait_for(
            lambda: (node.container(POD, "main") or {}).get("state", {}).get("running"),
            60,
            "the static pod running",
        )
        cp.node_object(NODE, node.port)
        try:
            cp.create(
                "/api/v1/namespaces/default/pods",
                {
                    "apiVersion": "v1",
                    "kind": "Pod",
                    "metadata": {
                        "name": MIRROR,
                        "annotations": {"kubernetes.io/config.mirror": "by-hand"},
                    },
                    "spec": {
                        "nodeName": NODE,
                        "containers": [
                            *(
                                {"name": name, "image": "busybox"}
                                for name in ("main", "echo", "logger", "crasher")
                            ),
                            {"name": "term", "image": "busybox", "stdin": True, "tty": True},
                        ],
                    },
                },
            )
            # kubectl port-forward wants the pod Running (node mode reports it so)
            cp.request(
                "PATCH",
                f"/api/v1/namespaces/default/pods/{MIRROR}/status",
                {"status": {"phase": "Running"}},
                content_type="application/merge-patch+json",
            )
        except ApiError as e:
            if e.status != 409:  # node mode made the mirror pod already
                raise
        yield node, admin
    finally:
        cp.delete(f"/api/v1/namespaces/default/pods/{MIRROR}?gracePeriodSeconds=0")
        cp.delete(f"/api/v1/nodes/{NODE}")
        node.cleanup()
