"""The pod layer's image manager (pods/images.py) driving the process runtime against a real
registry: pull policies, ErrImagePull → ImagePullBackOff with upstream's back-off sequence,
credentials from a docker config file. Time is a FakeClock; the registry and pulls are real."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pykubelet.api import Pod
from pykubelet.core.clock import FakeClock
from pykubelet.pods.backoff import Backoff
from pykubelet.pods.credentials import load_docker_config_file
from pykubelet.pods.images import PullCredentials, PullOutcome, ensure_image
from pykubelet.runtime.process.runtime import ProcessRuntime
from tests.images.registry import Registry


def _pod(image: str, policy: str | None = None, secrets: list[str] | None = None) -> Pod:
    c: dict[str, object] = {"name": "c", "image": image}
    if policy:
        c["imagePullPolicy"] = policy
    spec: dict[str, object] = {"containers": [c]}
    if secrets:
        spec["imagePullSecrets"] = [{"name": n} for n in secrets]
    return Pod.from_dict(
        {"metadata": {"name": "p", "namespace": "default", "uid": "uid-1"}, "spec": spec}
    )


class _Pulls:
    def __init__(self, rt: ProcessRuntime, creds: PullCredentials | None = None) -> None:
        self.rt = rt
        self.clock = FakeClock()
        self.backoff = Backoff(self.clock)  # the agent's image back-off: 10 s doubling to 300 s
        self.creds = creds or PullCredentials()

    async def ensure(self, pod: Pod) -> PullOutcome:
        c = pod.spec.containers[0]
        return await ensure_image(self.rt, self.backoff, self.clock, self.creds, pod, c)


def _docker_config(tmp_path: Path, registry: Registry, password: str) -> Path:
    path = tmp_path / "config.json"
    key = f"https://{registry.host}/v1/"
    path.write_text(json.dumps({"auths": {key: {"username": registry.user, "password": password}}}))
    return path


async def test_wrong_password_backs_off_as_upstream(tmp_path: Path, tls_registry: Registry) -> None:
    rt = ProcessRuntime(tmp_path / "root", registry_ca_file=tls_registry.ca_file)
    keyring = load_docker_config_file(_docker_config(tmp_path, tls_registry, "wrong"))
    p = _Pulls(rt, PullCredentials(keyring))
    pod = _pod(f"{tls_registry.host}/private/busybox:1.0")
    seen: list[tuple[float, str]] = []
    start = p.clock.now()
    # ErrImagePull at each retry, ImagePullBackOff between: 10 s, then 20 s, 40 s, 80 s ...
    for _ in range(40):
        got = await p.ensure(pod)
        assert got.waiting is not None
        if not seen or seen[-1][1] != got.waiting.reason:
            seen.append((p.clock.now() - start, got.waiting.reason))
        if got.waiting.reason == "ErrImagePull":
            assert "unauthorized" in got.waiting.message
        else:
            assert got.waiting.message == f'Back-off pulling image "{pod.spec.containers[0].image}"'
        await p.clock.advance(got.retry_s)
        if p.clock.now() - start > 160:
            break
    assert seen == [
        (0.0, "ErrImagePull"),
        (1.0, "ImagePullBackOff"),
        (10.0, "ErrImagePull"),
        (11.0, "ImagePullBackOff"),
        (30.0, "ErrImagePull"),
        (31.0, "ImagePullBackOff"),
        (70.0, "ErrImagePull"),
        (71.0, "ImagePullBackOff"),
        (150.0, "ErrImagePull"),
        (151.0, "ImagePullBackOff"),
    ]
    assert await rt.list_images() == []


async def test_docker_config_credentials_pull(tmp_path: Path, tls_registry: Registry) -> None:
    rt = ProcessRuntime(tmp_path / "root", registry_ca_file=tls_registry.ca_file)
    keyring = load_docker_config_file(_docker_config(tmp_path, tls_registry, tls_registry.password))
    got = await _Pulls(rt, PullCredentials(keyring)).ensure(
        _pod(f"{tls_registry.host}/private/busybox:1.0")
    )
    assert got.waiting is None and got.image_id.startswith("sha256:")
    # without credentials the same pull is refused
    rt2 = ProcessRuntime(tmp_path / "root2", registry_ca_file=tls_registry.ca_file)
    got = await _Pulls(rt2).ensure(_pod(f"{tls_registry.host}/private/busybox:1.0"))
    assert got.waiting is not None and got.waiting.reason == "ErrImagePull"


async def test_never_with_a_missing_image(tmp_path: Path, plain_registry: Registry) -> None:
    rt = ProcessRuntime(tmp_path / "root")
    p = _Pulls(rt)
    ref = f"{plain_registry.host}/test/busybox:1.0"
    got = await p.ensure(_pod(ref, "Never"))
    assert got.waiting is not None and got.waiting.reason == "ErrImageNeverPull"
    assert (
        got.waiting.message == f'Container image "{ref}" is not present with pull policy of Never'
    )
    assert await rt.list_images() == []
    await rt.pull_image(ref)
    got = await p.ensure(_pod(ref, "Never"))
    assert got.waiting is None


async def test_always_pulls_again_and_if_not_present_does_not(
    tmp_path: Path, plain_registry: Registry, test_layout: Path
) -> None:
    rt = ProcessRuntime(tmp_path / "root")
    p = _Pulls(rt)
    ref = f"{plain_registry.host}/test/policy:1.0"
    plain_registry.push_oci(test_layout, "busybox", "test/policy:1.0")
    first = await p.ensure(_pod(ref, "IfNotPresent"))
    assert first.waiting is None
    plain_registry.push_oci(test_layout, "sleeper", "test/policy:1.0")  # the tag moves
    again = await p.ensure(_pod(ref, "IfNotPresent"))
    assert again.image_id == first.image_id  # present: not pulled
    always = await p.ensure(_pod(ref, "Always"))
    assert always.waiting is None and always.image_id != first.image_id
    info = await rt.image_status(ref)
    assert info is not None and info.config_cmd == ("sleep", "3600")


async def test_latest_and_untagged_default_to_always() -> None:
    assert _pod("example.com/x").spec.containers[0].image_pull_policy == "Always"
    assert _pod("example.com/x:latest").spec.containers[0].image_pull_policy == "Always"
    assert _pod("example.com/x:1").spec.containers[0].image_pull_policy == "IfNotPresent"
    digest = "example.com/x@sha256:" + "a" * 64
    assert _pod(digest).spec.containers[0].image_pull_policy == "IfNotPresent"


@pytest.mark.parametrize("image", ["UPPER/case:1", "a//b", "x:", "x@sha256:abc"])
async def test_invalid_image_name(tmp_path: Path, image: str) -> None:
    got = await _Pulls(ProcessRuntime(tmp_path / "root")).ensure(_pod(image, "IfNotPresent"))
    assert got.waiting is not None and got.waiting.reason == "InvalidImageName"
