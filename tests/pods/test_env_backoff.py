"""$(VAR) expansion as Kubernetes does it, and the flowcontrol back-off arithmetic."""

from __future__ import annotations

import pytest

from pykubelet.api import Pod
from pykubelet.core.clock import FakeClock
from pykubelet.core.errors import InvalidInput
from pykubelet.pods import Backoff, build_env, expand
from pykubelet.pods.worker import go_duration

ENV = {"VAR_A": "A", "VAR_B": "B", "EMPTY": ""}


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("$(VAR_A)", "A"),
        ("___$(VAR_A)___", "___A___"),
        ("$(VAR_A)$(VAR_B)", "AB"),
        ("$(EMPTY)x", "x"),
        ("$(UNKNOWN)", "$(UNKNOWN)"),
        ("$$(VAR_A)", "$(VAR_A)"),
        ("$$$(VAR_A)", "$A"),
        ("$$$$(VAR_A)", "$$(VAR_A)"),
        ("$(VAR_A", "$(VAR_A"),
        ("$(VAR_A$(VAR_B)", "$(VAR_A$(VAR_B)"),
        ("$($$)", "$($$)"),  # the name is "$$": undefined, kept
        ("$()", "$()"),
        ("$VAR_A", "$VAR_A"),
        ("$", "$"),
        ("x$", "x$"),
        ("$$", "$"),
        ("", ""),
        ("f(VAR_A)", "f(VAR_A)"),
    ],
)
def test_expand_matches_kubernetes(text: str, want: str) -> None:
    assert expand(text, ENV) == want


def _pod(env: list[dict[str, object]]) -> Pod:
    return Pod.from_dict(
        {
            "metadata": {"name": "p"},
            "spec": {"containers": [{"name": "c", "image": "busybox", "env": env}]},
        }
    )


def test_env_sees_only_earlier_variables_and_later_duplicates_win() -> None:
    pod = _pod(
        [
            {"name": "B", "value": "$(A)"},
            {"name": "A", "value": "a"},
            {"name": "C", "value": "$(A)-$(B)"},
            {"name": "A", "value": "again"},
        ]
    )
    env = build_env(pod, pod.spec.containers[0], path="spec.containers[0]")
    assert env == (("B", "$(A)"), ("A", "again"), ("C", "a-$(A)"))


def test_value_from_without_resolver_names_the_field() -> None:
    pod = _pod([{"name": "X", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}])
    with pytest.raises(InvalidInput) as e:
        build_env(pod, pod.spec.containers[0], path="spec.containers[0]")
    assert e.value.field == "spec.containers[0].env[0].valueFrom"


def test_value_from_resolver_is_used() -> None:
    pod = _pod(
        [
            {"name": "X", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
            {"name": "Y", "value": "$(X)!"},
        ]
    )
    env = build_env(pod, pod.spec.containers[0], value_from=lambda p, c, v, f: p.meta.name)
    assert env == (("X", "p"), ("Y", "p!"))


def test_backoff_doubles_caps_and_resets() -> None:
    clock = FakeClock()
    b = Backoff(clock, initial_s=10, max_s=300)
    seq = []
    for _ in range(8):
        b.next("k", clock.now())
        seq.append(b.get("k"))
    assert seq == [10, 20, 40, 80, 160, 300, 300, 300]
    t = clock.now()
    assert b.in_backoff_since("k", t)
    clock._t += 299
    assert b.in_backoff_since("k", t)
    clock._t += 1
    assert not b.in_backoff_since("k", t)
    # an event more than 2*max after the last update starts over
    clock._t += 601
    assert not b.in_backoff_since("k", clock.now())
    b.next("k", clock.now())
    assert b.get("k") == 10
    b.forget("k")
    assert b.get("k") == 0


def test_go_duration_strings() -> None:
    assert [go_duration(s) for s in (10, 40, 80, 160, 300, 3700)] == [
        "10s",
        "40s",
        "1m20s",
        "2m40s",
        "5m0s",
        "1h1m40s",
    ]
