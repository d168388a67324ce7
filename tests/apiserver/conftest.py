"""Fixtures: a private control plane (etcd, kube-apiserver, kube-controller-manager) per session,
started only by the tests that ask for it, and stopped by pid at the end."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.apiserver.controlplane import ETCD, UPSTREAM_BIN, ControlPlane
from tests.prereq import require


def require_control_plane() -> None:
    require(
        (UPSTREAM_BIN / "kube-apiserver").is_file(),
        f"needs kube-apiserver v1.20.2 in {UPSTREAM_BIN} (scripts/upstream-k8s/setup.sh)",
    )
    require(os.path.isfile(ETCD), "needs etcd (Debian's etcd-server)")


@pytest.fixture(scope="session")
def control_plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControlPlane]:
    """etcd + kube-apiserver; the controller-manager (CSR approval and signing) is started by
    ``controller_manager``. v1.20's signer backdates notBefore by 5 min and takes them off
    notAfter too: with 7 min, a certificate is valid 2 min from signing and due for rotation
    (70-90 % of its lifetime from notBefore) at most 78 s after signing (at once, 1 time in 14,
    which a rotation test takes as it comes)."""
    require_control_plane()
    cp = ControlPlane(tmp_path_factory.mktemp("controlplane"), signing_duration="7m")
    try:
        cp.start()
        yield cp
    finally:
        cp.stop()


@pytest.fixture(scope="session")
def controller_manager(control_plane: ControlPlane) -> ControlPlane:
    require((UPSTREAM_BIN / "kube-controller-manager").is_file(), "needs kube-controller-manager")
    if "kube-controller-manager" not in control_plane.procs:
        control_plane.start_controller_manager()
        control_plane.allow_tls_bootstrap()
    return control_plane


@pytest.fixture
def scratch(tmp_path: Path) -> Path:
    return tmp_path
