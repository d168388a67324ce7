"""Runtime error kinds.

PykubeletError
└── RuntimeFailure (kinds below subclass the shared ones as well)
    ├── ContainerNotFound, SandboxNotFound, ImageNotFound   (NotFound)
    ├── ImagePullError                                      (Unavailable)
    ├── CreateContainerError                                (InvalidInput)
    ├── ContainerNotRunning                                 (Conflict)
    ├── ExecTimeout                                         (Unavailable)
    └── RuntimeUnavailable                                  (Unavailable)
"""

from __future__ import annotations

from pykubelet.core.errors import Conflict, InvalidInput, NotFound, PykubeletError, Unavailable

__all__ = [
    "ContainerNotFound",
    "ContainerNotRunning",
    "ExecTimeout",
    "CreateContainerError",
    "ImageNotFound",
    "ImagePullError",
    "RuntimeFailure",
    "RuntimeUnavailable",
    "SandboxNotFound",
]


class RuntimeFailure(PykubeletError):
    """Base of runtime errors (trailing underscore: not the builtin)."""


class ContainerNotFound(RuntimeFailure, NotFound):
    pass


class SandboxNotFound(RuntimeFailure, NotFound):
    pass


class ImageNotFound(RuntimeFailure, NotFound):
    """The image is not in the local store and cannot be pulled (no registry here)."""


class ImagePullError(RuntimeFailure, Unavailable):
    pass


class CreateContainerError(RuntimeFailure, InvalidInput):
    """The container config cannot be realised (bad working dir, unsupported option)."""


class RuntimeUnavailable(RuntimeFailure, Unavailable):
    pass


class ContainerNotRunning(RuntimeFailure, Conflict):
    """The operation needs a running container (exec, attach) or a created one (start)."""


class ExecTimeout(RuntimeFailure, Unavailable):
    """``exec_sync`` ran past its timeout; the command was killed."""
