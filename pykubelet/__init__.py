"""pykubelet: a kubelet-compatible Kubernetes node agent, secure by default."""

__all__ = ["__version__"]

__version__ = "0.1.0"
