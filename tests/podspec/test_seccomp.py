"""seccompProfile against the runtime's features: refused where the runtime cannot apply it (the
process runtime), passed on as RuntimeDefault where it can (containerd)."""

from __future__ import annotations

import pytest

from pykubelet.pods.spec_errors import UnsupportedByRuntime
from pykubelet.podspec.security import container_security
from pykubelet.runtime import RuntimeFeatures
from tests.podspec.test_specs import pod


def test_runtime_default_reaches_a_runtime_that_applies_it() -> None:
    p = pod({}, securityContext={"seccompProfile": {"type": "RuntimeDefault"}})
    eff = container_security(p, p.spec.containers[0], seccomp=True)
    assert eff.config.seccomp == "RuntimeDefault"
    # the container's own profile wins over the pod's
    q = pod(
        {"securityContext": {"seccompProfile": {"type": "Unconfined"}}},
        securityContext={"seccompProfile": {"type": "RuntimeDefault"}},
    )
    assert container_security(q, q.spec.containers[0], seccomp=True).config.seccomp == "Unconfined"
    assert container_security(pod(), pod().spec.containers[0], seccomp=True).config.seccomp == ""


def test_what_cannot_be_applied_is_refused_naming_the_field() -> None:
    p = pod({"securityContext": {"seccompProfile": {"type": "RuntimeDefault"}}})
    with pytest.raises(UnsupportedByRuntime, match=r"'app'.securityContext.seccompProfile"):
        container_security(p, p.spec.containers[0], seccomp=False)
    local = pod({"securityContext": {"seccompProfile": {"type": "Localhost"}}})
    with pytest.raises(UnsupportedByRuntime, match=r"seccompProfile.type"):
        container_security(local, local.spec.containers[0], seccomp=True)


def test_features_are_an_optional_capability() -> None:
    class Bare:
        pass

    class Enforcing:
        features = RuntimeFeatures(seccomp=True)

    assert RuntimeFeatures.of(Bare()).seccomp is False
    assert RuntimeFeatures.of(Enforcing()).seccomp is True
