"""Runtime error kinds.

PykubeletError
└── RuntimeError_ (kinds below subclass the shared ones as well)
    ├── ContainerNotFound, SandboxNotFound, ImageNotFound   (NotFound)
    ├── ImagePullError                                      (Unavailable)
    ├── CreateContainerError                                (InvalidInput)
    ├── ContainerNotRunning                                 (Conflict)
    ├── ExecTimeout                                         (Unavailable)
    └── RuntimeUnavailable                                  (Unavailable)
"""

from __future__ import annotations

from pykubelet.errors import Conflict, InvalidInput, NotFound, PykubeletError, Unavailable

__all__ = [
    "ContainerNotFound",
    "ContainerNotRunning",
    "ExecTimeout",
    "CreateContainerError",
    "ImageNotFound",
    "ImagePullError",
    "RuntimeError_",
    "RuntimeUnavailable",
    "SandboxNotFound",
]


class RuntimeError_(PykubeletError):
    """Base of runtime errors (trailing underscore: not the builtin)."""


class ContainerNotFound(RuntimeError_, NotFound):
    pass


class SandboxNotFound(RuntimeError_, NotFound):
    pass


class ImageNotFound(RuntimeError_, NotFound):
    """The image is not in the local store and cannot be pulled (no registry here)."""


class ImagePullError(RuntimeError_, Unavailable):
    pass


class CreateContainerError(RuntimeError_, InvalidInput):
    """The container config cannot be realised (bad working dir, unsupported option)."""


class RuntimeUnavailable(RuntimeError_, Unavailable):
    pass


class ContainerNotRunning(RuntimeError_, Conflict):
    """The operation needs a running container (exec, attach) or a created one (start)."""


class ExecTimeout(RuntimeError_, Unavailable):
    """``exec_sync`` ran past its timeout; the command was killed."""
