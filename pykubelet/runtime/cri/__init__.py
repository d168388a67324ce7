"""The CRI v1 runtime: pods on containerd (or any CRI runtime) over gRPC."""

from pykubelet.runtime.cri.runtime import CriRuntime

__all__ = ["CriRuntime"]
