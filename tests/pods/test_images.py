"""pods/images.py on the FakeRuntime: which credentials a pull tries, and in which order."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence

from pykubelet.api import Pod
from pykubelet.core.clock import FakeClock
from pykubelet.pods.backoff import Backoff
from pykubelet.pods.credentials import Keyring
from pykubelet.pods.images import PullCredentials, ensure_image, pull_gate
from pykubelet.runtime.fake import FakeRuntime


def _ring(**users: str) -> Keyring:
    auths = {host.replace("_", "."): {"username": u, "password": "x"} for host, u in users.items()}
    return Keyring.from_docker_config(json.dumps({"auths": auths}), "test")


class _Secrets:
    """The node mode's resolver, as the API server would answer: secret name -> keyring."""

    def __init__(self, secrets: dict[str, Keyring]) -> None:
        self.secrets = secrets
        self.asked: list[tuple[str, tuple[str, ...]]] = []

    async def keyring(self, namespace: str, names: Sequence[str]) -> Keyring:
        self.asked.append((namespace, tuple(names)))
        ring = Keyring()
        for n in names:
            if n in self.secrets:
                ring = ring + self.secrets[n]
        return ring


def _pod(image: str, secrets: Sequence[str] = ()) -> Pod:
    spec = {
        "containers": [{"name": "c", "image": image}],
        "imagePullSecrets": [{"name": s} for s in secrets],
    }
    return Pod.from_dict({"metadata": {"name": "p", "namespace": "ns", "uid": "u"}, "spec": spec})


async def _ensure(rt: FakeRuntime, creds: PullCredentials, pod: Pod) -> str:
    clock = FakeClock()
    got = await ensure_image(rt, Backoff(clock), clock, creds, pod, pod.spec.containers[0])
    return got.waiting.reason if got.waiting else "ok"


async def test_pod_secrets_are_tried_before_the_node_keyring() -> None:
    rt = FakeRuntime(FakeClock())
    image = "reg.example.com/app:latest"
    rt.require_auth(image, "node-user")
    secrets = _Secrets({"s1": _ring(reg_example_com="pod-user"), "s2": _ring(other_io="x")})
    creds = PullCredentials(_ring(reg_example_com="node-user"), secrets)
    assert await _ensure(rt, creds, _pod(image, ["s1", "s2", "missing"])) == "ok"
    assert secrets.asked == [("ns", ("s1", "s2", "missing"))]
    assert [a.username if a else None for a in rt.pull_auths] == ["pod-user", "node-user"]


async def test_no_matching_credentials_pull_anonymously() -> None:
    rt = FakeRuntime(FakeClock())
    creds = PullCredentials(_ring(other_io="someone"))
    assert await _ensure(rt, creds, _pod("reg.example.com/app:latest")) == "ok"
    assert rt.pull_auths == [None]


async def test_all_credentials_refused_is_err_image_pull() -> None:
    rt = FakeRuntime(FakeClock())
    image = "reg.example.com/app:latest"
    rt.require_auth(image, "right")
    creds = PullCredentials(
        _ring(reg_example_com="wrong"), _Secrets({"s": _ring(reg_example_com="bad")})
    )
    assert await _ensure(rt, creds, _pod(image, ["s"])) == "ErrImagePull"
    assert [a.username if a else None for a in rt.pull_auths] == ["bad", "wrong"]


async def test_if_not_present_asks_no_credentials_when_present() -> None:
    rt = FakeRuntime(FakeClock())
    secrets = _Secrets({})
    assert (
        await _ensure(rt, PullCredentials(None, secrets), _pod("reg.example.com/app:1", ["s"]))
        == "ok"
    )
    assert rt.pulls == [] and secrets.asked == []


async def test_events_as_upstream_reports_them() -> None:
    clock = FakeClock()
    rt = FakeRuntime(clock)
    backoff = Backoff(clock)
    seen: list[tuple[str, str, str]] = []

    async def ensure(image: str, policy: str) -> None:
        spec = {"containers": [{"name": "c", "image": image, "imagePullPolicy": policy}]}
        pod = Pod.from_dict({"metadata": {"name": "p", "uid": "u"}, "spec": spec})
        c = pod.spec.containers[0]
        await ensure_image(rt, backoff, clock, PullCredentials(), pod, c, lambda *e: seen.append(e))

    await ensure("reg.example.com/a:1", "IfNotPresent")
    await ensure("reg.example.com/a:1", "Always")
    rt.hide_image("reg.example.com/gone:1")
    await ensure("reg.example.com/gone:1", "Never")
    await ensure("reg.example.com/gone:1", "IfNotPresent")
    await ensure("reg.example.com/gone:1", "IfNotPresent")
    assert seen == [
        ("Normal", "Pulled", 'Container image "reg.example.com/a:1" already present on machine'),
        ("Normal", "Pulling", 'Pulling image "reg.example.com/a:1"'),
        ("Normal", "Pulled", 'Successfully pulled image "reg.example.com/a:1"'),
        (
            "Warning",
            "ErrImageNeverPull",
            'Container image "reg.example.com/gone:1" is not present with pull policy of Never',
        ),
        ("Normal", "Pulling", 'Pulling image "reg.example.com/gone:1"'),
        (
            "Warning",
            "Failed",
            "Failed to pull image \"reg.example.com/gone:1\": image 'reg.example.com/gone:1' "
            "not found in the registry",
        ),
        ("Warning", "Failed", "Error: ErrImagePull"),
        ("Normal", "BackOff", 'Back-off pulling image "reg.example.com/gone:1"'),
    ]


async def _pull_four(gate: asyncio.Semaphore | None) -> tuple[int, list[str]]:
    clock = FakeClock()
    rt = FakeRuntime(clock)
    rt.pull_delay_s = 5.0
    backoff = Backoff(clock)
    order: list[str] = []

    async def one(i: int) -> None:
        pod = _pod(f"reg.example.com/app{i}:latest")
        c = pod.spec.containers[0]
        got = await ensure_image(rt, backoff, clock, PullCredentials(), pod, c, gate=gate)
        assert got.waiting is None
        order.append(c.image)

    tasks = [asyncio.create_task(one(i)) for i in range(4)]
    while not all(t.done() for t in tasks):
        await clock.advance(1.0)
    await asyncio.gather(*tasks)
    return rt.max_pulls_under_way, order


async def test_serialized_and_bounded_pulls() -> None:
    assert (await _pull_four(pull_gate(serialize=True, max_parallel=0)))[0] == 1
    assert (await _pull_four(pull_gate(serialize=False, max_parallel=2)))[0] == 2
    assert (await _pull_four(pull_gate(serialize=False, max_parallel=0)))[0] == 4
    # serialized pulls go first come, first served
    _, order = await _pull_four(pull_gate(serialize=True, max_parallel=0))
    assert order == [f"reg.example.com/app{i}:latest" for i in range(4)]
