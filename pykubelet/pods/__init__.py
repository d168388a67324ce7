"""The pod lifecycle: sources, the pod manager, one worker per pod, back-off, status.

Pod-spec features (probes, hooks, volumes, downward API, security context) live in
``pykubelet.podspec`` and plug in through ``WorkerDeps``; they never import this layer's
manager or worker."""

from pykubelet.pods.backoff import Backoff
from pykubelet.pods.cache import ContainerCache
from pykubelet.pods.credentials import DockerConfigFiles, Keyring
from pykubelet.pods.env import ValueFromResolver, build_env, expand, expand_command
from pykubelet.pods.image_gc import ImageGC
from pykubelet.pods.images import (
    PullCredentials,
    PullSecretResolver,
    ensure_image,
    pull_gate,
    pull_with_keyring,
)
from pykubelet.pods.manager import PodManager
from pykubelet.pods.protocol import PodLister, VersionedPodLister
from pykubelet.pods.runtime_config import ContainerConfigHook, RuntimeConfigBuilder
from pykubelet.pods.source_file import StaticDirSource
from pykubelet.pods.static_pod import static_pod_from_document, static_pod_uid
from pykubelet.pods.status_manager import StatusManager
from pykubelet.pods.types import PodLayerStats, PodUpdate, UpdateOp, WorkerPhase
from pykubelet.pods.worker import PodWorker, WorkerCounters, WorkerDeps

__all__ = [
    "Backoff",
    "ContainerCache",
    "ContainerConfigHook",
    "DockerConfigFiles",
    "ImageGC",
    "Keyring",
    "PullCredentials",
    "PullSecretResolver",
    "PodLayerStats",
    "PodLister",
    "VersionedPodLister",
    "PodManager",
    "PodUpdate",
    "PodWorker",
    "RuntimeConfigBuilder",
    "StaticDirSource",
    "StatusManager",
    "UpdateOp",
    "ValueFromResolver",
    "WorkerCounters",
    "WorkerDeps",
    "WorkerPhase",
    "build_env",
    "ensure_image",
    "pull_gate",
    "pull_with_keyring",
    "expand",
    "expand_command",
    "static_pod_from_document",
    "static_pod_uid",
]
