"""Kubernetes object shapes the node uses: pod views, status values, PodList encoding."""

from pykubelet.api.gojson import go_json
from pykubelet.api.pod import Container, ObjectMeta, Pod, PodSpec, pods_to_list
from pykubelet.api.quantity import Quantity, canonical_quantity, parse_quantity
from pykubelet.api.status import (
    ContainerStateRunning,
    ContainerStateTerminated,
    ContainerStateView,
    ContainerStateWaiting,
    ContainerStatusView,
    PodCondition,
    PodStatus,
    rfc3339,
)

__all__ = [
    "Container",
    "ContainerStateRunning",
    "ContainerStateTerminated",
    "ContainerStateView",
    "ContainerStateWaiting",
    "ContainerStatusView",
    "ObjectMeta",
    "Pod",
    "PodCondition",
    "PodSpec",
    "PodStatus",
    "Quantity",
    "canonical_quantity",
    "go_json",
    "parse_quantity",
    "pods_to_list",
    "rfc3339",
]
