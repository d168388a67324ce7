"""Protocol errors of the streaming cores, named for whose fault they are (as h11 does).

PykubeletError
└── ProtocolError                 abstract; ``error_status_hint`` says what to send back
    ├── LocalProtocolError        we (the caller) broke the rules
    └── RemoteProtocolError       the peer did; also InvalidInput (bad bytes are bad input)

After either, a session sits in its ERROR state and refuses further use.
"""

from __future__ import annotations

from pykubelet.core.errors import InvalidInput, PykubeletError

__all__ = ["LocalProtocolError", "ProtocolError", "RemoteProtocolError"]


class ProtocolError(PykubeletError):
    """Base of protocol errors; ``error_status_hint`` is a SPDY status or WS close code."""

    def __init__(self, message: str, *, error_status_hint: int = 1) -> None:
        super().__init__(message)
        self.error_status_hint = error_status_hint


class LocalProtocolError(ProtocolError):
    """The local caller asked for something the protocol does not allow."""


class RemoteProtocolError(ProtocolError, InvalidInput):
    """The peer sent bytes that break the protocol."""

    def __init__(self, message: str, *, error_status_hint: int = 1) -> None:
        ProtocolError.__init__(self, message, error_status_hint=error_status_hint)
        self.field = ""
        self.reason = message
