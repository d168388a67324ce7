"""Errors from turning a pod spec into runtime configuration.

PykubeletError
├── InvalidInput
│   └── ContainerConfigError     container waits with reason ``CreateContainerConfigError``
│       └── UnsupportedByRuntime the runtime cannot enforce the spec (refused, not ignored)
└── VolumeSetupError             a volume cannot be prepared (upstream event ``FailedMount``)
"""

from __future__ import annotations

from pykubelet.core.errors import InvalidInput, PykubeletError

__all__ = ["ContainerConfigError", "UnsupportedByRuntime", "VolumeSetupError"]


class ContainerConfigError(InvalidInput):
    """The container cannot be configured; the worker reports it as a waiting reason."""

    waiting_reason = "CreateContainerConfigError"


class UnsupportedByRuntime(ContainerConfigError):
    """The spec asks for something the runtime cannot enforce; refused with a clear reason."""


class VolumeSetupError(PykubeletError):
    """A volume could not be set up or cleaned; ``volume`` names it."""

    event_reason = "FailedMount"

    def __init__(self, message: str, *, volume: str = "") -> None:
        super().__init__(message)
        self.volume = volume
