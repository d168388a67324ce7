"""Whether and how a container's image is pulled: the kubelet's image manager, runtime-neutral.

``imagePullPolicy`` (defaulted by ``api/`` as upstream: ``:latest`` or no tag → Always, else
IfNotPresent), the per pod-and-image back-off (``ErrImagePull`` then ``ImagePullBackOff``, 10 s
doubling to 300 s), and credentials: the pod's ``imagePullSecrets`` (through a
``PullSecretResolver`` the API-server side provides) before the node's docker config. As the Go
kubelet, each matching credential is tried in turn and the first success wins; with none
matching the pull is anonymous. Any ``ImageService`` (process runtime, CRI, fake) serves.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from pykubelet.api import Container, ContainerStateWaiting, Pod
from pykubelet.core.clock import Clock
from pykubelet.core.errors import InvalidInput
from pykubelet.pods.backoff import Backoff
from pykubelet.pods.credentials import DockerConfigFiles, Keyring
from pykubelet.pods.events import NORMAL, WARNING
from pykubelet.registry import parse_ref
from pykubelet.runtime.errors import ImageNotFound, ImagePullError
from pykubelet.runtime.protocol import ImageService

__all__ = [
    "PullCredentials",
    "PullOutcome",
    "PullSecretResolver",
    "ensure_image",
    "pull_gate",
    "pull_with_keyring",
]

log = logging.getLogger(__name__)

NEVER_PULL_RETRY_S = 10.0


class PullSecretResolver(Protocol):
    """Reads a pod's ``imagePullSecrets`` (``kubernetes.io/dockerconfigjson`` or ``dockercfg``
    secrets) from the API server, in the order given, as one keyring (``Keyring.from_secret``
    per secret, joined with ``+``). Secrets that are missing or of another type are left out
    (upstream logs and goes on); the node mode implements this."""

    async def keyring(self, namespace: str, names: Sequence[str]) -> Keyring: ...


class PullCredentials:
    """The credentials for a pod's pulls: its pull secrets first, then the node's keyring."""

    def __init__(
        self,
        node: Keyring | DockerConfigFiles | None = None,
        secrets: PullSecretResolver | None = None,
    ) -> None:
        self._node = node or Keyring()
        self._secrets = secrets

    async def for_pod(self, pod: Pod) -> Keyring:
        node = self._node
        if isinstance(node, DockerConfigFiles):
            node = await asyncio.to_thread(node.keyring)
        names = pod.spec.image_pull_secrets
        if not names or self._secrets is None:
            return node
        return await self._secrets.keyring(pod.meta.namespace, names) + node


@dataclass(frozen=True, slots=True, kw_only=True)
class PullOutcome:
    """Ready (``image_id`` set), or waiting with a reason, to look again in ``retry_s``."""

    image_id: str = ""
    waiting: ContainerStateWaiting | None = None
    retry_s: float = 0.0


def _no_event(type_: str, reason: str, message: str) -> None:
    return None


async def ensure_image(
    images: ImageService,
    backoff: Backoff,
    clock: Clock,
    credentials: PullCredentials,
    pod: Pod,
    c: Container,
    event: Callable[[str, str, str], None] = _no_event,
    gate: asyncio.Semaphore | None = None,
) -> PullOutcome:
    """Make ``c.image`` present as its policy says; never raises for a pull that fails.
    ``event(type, reason, message)`` reports what upstream's image manager reports; ``gate``
    bounds the pulls under way on the node (``serializeImagePulls``, ``maxParallelImagePulls``):
    a pull waits for its turn, as upstream's serial and parallel pullers make it."""
    image = c.image
    try:
        parse_ref(image)
    except InvalidInput:
        message = (
            f'Failed to apply default image tag "{image}": couldn\'t parse image reference '
            f'"{image}": invalid reference format'
        )
        event(WARNING, "InspectFailed", message)
        return _waiting("InvalidImageName", message, NEVER_PULL_RETRY_S)
    if c.image_pull_policy != "Always":
        present = await images.image_status(image)
        if present is not None:
            event(NORMAL, "Pulled", f'Container image "{image}" already present on machine')
            return PullOutcome(image_id=present.id)
        if c.image_pull_policy == "Never":
            message = f'Container image "{image}" is not present with pull policy of Never'
            event(WARNING, "ErrImageNeverPull", message)
            return _waiting("ErrImageNeverPull", message, NEVER_PULL_RETRY_S)
    key = f"{pod.uid}/image/{image}"
    if backoff.in_backoff_since_update(key):
        message = f'Back-off pulling image "{image}"'
        event(NORMAL, "BackOff", message)
        return _waiting("ImagePullBackOff", message, backoff.remaining_since_update_s(key))
    try:
        async with gate or contextlib.nullcontext():
            event(NORMAL, "Pulling", f'Pulling image "{image}"')
            image_id = await pull_with_keyring(images, image, await credentials.for_pod(pod))
    except (ImageNotFound, ImagePullError) as e:
        backoff.next(key, clock.now())
        log.info("pod %s: pulling %s failed: %s", pod.full_name, image, e)
        event(WARNING, "Failed", f'Failed to pull image "{image}": {e}')
        event(WARNING, "Failed", "Error: ErrImagePull")
        # ErrImagePull now, ImagePullBackOff from the next look on (a second later)
        return _waiting("ErrImagePull", str(e), min(1.0, backoff.get(key)))
    event(NORMAL, "Pulled", f'Successfully pulled image "{image}"')
    return PullOutcome(image_id=image_id)


async def pull_with_keyring(images: ImageService, image: str, keyring: Keyring) -> str:
    """Pull with each matching credential in turn (anonymously when none match)."""
    creds = keyring.lookup(image)
    if not creds:
        return await images.pull_image(image)
    errors: list[str] = []
    for auth in creds:
        try:
            return await images.pull_image(image, auth)
        except (ImageNotFound, ImagePullError) as e:
            errors.append(str(e))
            last = e
    if len(errors) == 1:
        raise last
    raise ImagePullError("; ".join(dict.fromkeys(errors)))


def _waiting(reason: str, message: str, retry_s: float) -> PullOutcome:
    return PullOutcome(
        waiting=ContainerStateWaiting(reason=reason, message=message), retry_s=retry_s
    )


def pull_gate(serialize: bool, max_parallel: int) -> asyncio.Semaphore | None:
    """The node's bound on pulls under way: one when serialized (upstream's default), else
    ``max_parallel`` (0: none)."""
    if serialize:
        return asyncio.Semaphore(1)
    return asyncio.Semaphore(max_parallel) if max_parallel > 0 else None
