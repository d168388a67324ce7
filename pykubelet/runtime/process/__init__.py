"""The embedded process runtime: namespaces, overlay root filesystems, cgroups, and a native
shim per container so containers outlive the agent. See docs/runtime.md."""

from pykubelet.runtime.process.features import RuntimeCapabilities
from pykubelet.runtime.process.images import ImageStore
from pykubelet.runtime.process.refs import HOST_IMAGE, normalize_ref
from pykubelet.runtime.process.runtime import ProcessRuntime

__all__ = [
    "HOST_IMAGE",
    "ImageStore",
    "ProcessRuntime",
    "RuntimeCapabilities",
    "normalize_ref",
]
