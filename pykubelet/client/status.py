"""What the error channel's final message means for the exit status (pure).

v4/v5 send a ``metav1.Status`` as JSON (success too); the legacy protocols send text on failure
only. kubectl exits with the command's exit code and says so on stderr.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

__all__ = ["ExecOutcome", "exec_outcome"]


@dataclass(frozen=True, slots=True, kw_only=True)
class ExecOutcome:
    exit_code: int
    message: str = ""  # for stderr; empty on success

    @property
    def ok(self) -> bool:
        return self.exit_code == 0


def exec_outcome(payload: bytes, *, json_status: bool) -> ExecOutcome:
    """The outcome of a remote command from everything received on the error channel."""
    if not payload.strip():
        return ExecOutcome(exit_code=0)
    if not json_status:
        return ExecOutcome(exit_code=1, message=payload.decode("utf-8", "replace").strip())
    try:
        status = json.loads(payload)
    except ValueError:
        return ExecOutcome(exit_code=1, message=payload.decode("utf-8", "replace").strip())
    if not isinstance(status, dict) or status.get("status") == "Success":
        return ExecOutcome(exit_code=0)
    message = str(status.get("message", "remote command failed"))
    if status.get("reason") == "NonZeroExitCode":
        for cause in (status.get("details") or {}).get("causes") or []:
            if cause.get("reason") == "ExitCode":
                try:
                    code = int(cause.get("message", ""))
                except ValueError:
                    break
                # clients read the code as a uint8, as kubectl does
                return ExecOutcome(
                    exit_code=code & 0xFF, message=f"command terminated with exit code {code}"
                )
    return ExecOutcome(exit_code=1, message=message)
