"""seccompProfile against the runtime's features: refused where the runtime cannot apply it (the
process runtime), passed on as RuntimeDefault or a Localhost file where it can (containerd)."""

from __future__ import annotations

import pytest

from pykubelet.pods.spec_errors import ContainerConfigError, UnsupportedByRuntime
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
    local = pod(
        {"securityContext": {"seccompProfile": {"type": "Localhost", "localhostProfile": "a.json"}}}
    )
    with pytest.raises(UnsupportedByRuntime, match=r"'app'.securityContext.seccompProfile"):
        container_security(local, local.spec.containers[0], seccomp=False)


def test_localhost_profiles_are_files_under_the_profile_root() -> None:
    p = pod(
        {
            "securityContext": {
                "seccompProfile": {"type": "Localhost", "localhostProfile": "p/a.json"}
            }
        },
        securityContext={"seccompProfile": {"type": "RuntimeDefault"}},
    )
    eff = container_security(
        p, p.spec.containers[0], seccomp=True, seccomp_profile_root="/r/seccomp"
    )
    assert (eff.config.seccomp, eff.config.seccomp_localhost_ref) == (
        "Localhost",
        "/r/seccomp/p/a.json",
    )
    # a pod-level Localhost profile applies to a container without its own
    q = pod(
        {}, securityContext={"seccompProfile": {"type": "Localhost", "localhostProfile": "b.json"}}
    )
    got = container_security(q, q.spec.containers[0], seccomp=True, seccomp_profile_root="/s")
    assert got.config.seccomp_localhost_ref == "/s/b.json"


@pytest.mark.parametrize(
    ("profile", "field", "message"),
    [
        ({"type": "Localhost"}, "localhostProfile", "must be set"),
        ({"type": "Localhost", "localhostProfile": "/etc/a.json"}, "localhostProfile", "relative"),
        ({"type": "Localhost", "localhostProfile": "x/../../a.json"}, "localhostProfile", "'..'"),
        ({"type": "RuntimeDefault", "localhostProfile": "a.json"}, "localhostProfile", "only"),
        ({"type": "Strict"}, "seccompProfile.type", "Unsupported value"),
    ],
)
def test_bad_seccomp_profiles_are_refused_naming_the_field(
    profile: dict[str, str], field: str, message: str
) -> None:
    p = pod({"securityContext": {"seccompProfile": profile}})
    with pytest.raises(ContainerConfigError, match=message) as e:
        container_security(p, p.spec.containers[0], seccomp=True)
    assert e.value.field is not None and e.value.field.endswith(field)


def test_features_are_an_optional_capability() -> None:
    class Bare:
        pass

    class Enforcing:
        features = RuntimeFeatures(seccomp=True)

    assert RuntimeFeatures.of(Bare()).seccomp is False
    assert RuntimeFeatures.of(Enforcing()).seccomp is True
