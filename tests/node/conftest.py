"""Fixtures for node mode against the real control plane (see cluster.py).

``control_plane`` (session): starts ``start.sh controlplane`` once, unless it already runs,
and stops what it started at the end (stop.sh, by pid files). The binaries come from
scripts/upstream-k8s.sh (``make test`` runs it): missing, they fail in CI and skip elsewhere.
"""

from __future__ import annotations

import fcntl
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.node.cluster import UPSTREAM_DIR, ApiNode, ControlPlane, namespace_name
from tests.prereq import require, require_root


@pytest.fixture(scope="session")
def control_plane() -> Iterator[ControlPlane]:
    require_root()
    bins = [
        UPSTREAM_DIR / "bin" / b
        for b in ("kube-apiserver", "kubectl", "kube-scheduler", "kube-controller-manager")
    ]
    require(
        all(b.exists() for b in bins) and (UPSTREAM_DIR / ".setup-done").exists(),
        f"needs the reference control plane in {UPSTREAM_DIR} (scripts/upstream-k8s.sh)",
    )
    pytest.importorskip("kubernetes_asyncio")
    # One test session at a time on the shared stack: every session joins the same node name,
    # and the one that started the stack stops it at its end. Another session waits here.
    (UPSTREAM_DIR / "run").mkdir(exist_ok=True)
    with open(UPSTREAM_DIR / "run" / "pykubelet-node-tests.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        cp = ControlPlane(UPSTREAM_DIR)
        if not cp.running():
            cp.start()
            cp.started_here = True
        cp.delete_node()  # a node left by an earlier run
        try:
            yield cp
        finally:
            cp.delete_node()
            if cp.started_here:
                cp.stop()


@pytest.fixture
def stack_image() -> Path:
    tar = UPSTREAM_DIR / "image" / "busybox.tar"
    require(tar.exists(), f"needs the stack's busybox image {tar}")
    return tar


@pytest.fixture
def namespace(control_plane: ControlPlane) -> Iterator[str]:
    ns = namespace_name()
    control_plane.kubectl("create", "namespace", ns)
    try:
        yield ns
    finally:
        control_plane.kubectl("delete", "deployments,jobs", "--all", "-n", ns, check=False)
        control_plane.kubectl(
            "delete", "pods", "--all", "-n", ns, "--grace-period=0", "--force", check=False
        )
        control_plane.kubectl("delete", "namespace", ns, "--wait=false", check=False)


@pytest.fixture
def api_node(tmp_path: Path, stack_image: Path, control_plane: ControlPlane) -> Iterator[ApiNode]:
    n = ApiNode(
        tmp_path,
        stack_image,
        control_plane,
        "--node-status-update-frequency",
        "2s",
        "--sync-frequency",
        "5s",
    )
    try:
        yield n
    finally:
        n.cleanup()
        control_plane.delete_node()
