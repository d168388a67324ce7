"""Node mode: pykubelet as a node of a real cluster (``--kubeconfig``; docs/node.md).

``NodeMode`` holds the parts (node registration and status, Lease, the API pod source, the pod
status writer, mirror pods, events) and their ``run()`` loops; ``connect_node_mode`` builds it
once the API client is loaded. Nothing here runs without a kubeconfig.
"""

from __future__ import annotations

from pykubelet.node.client import ApiError, KubeApi, RateLimiter, connect
from pykubelet.node.mode import NodeMode, NodeModeSettings

__all__ = ["ApiError", "KubeApi", "NodeMode", "NodeModeSettings", "RateLimiter", "connect"]
