"""The agent's own log lines: ``--logging-format text|json`` and ``-v N``, as upstream's flags.

JSON lines carry ``ts`` (Unix seconds, as upstream's JSON logger), ``level``, ``logger``,
``caller``, ``msg`` and every ``extra=`` field of the call; an exception adds ``err``. Verbosity
maps onto the standard levels: 0-3 log INFO and above, 4 and up DEBUG (upstream's "debug"
verbosity). Request logs and the audit log keep their own content: a request line's message
is its JSON object, whatever the format around it.
"""

from __future__ import annotations

import json
import logging
import sys
from typing import Any, TextIO

__all__ = ["JsonFormatter", "TEXT_FORMAT", "configure_logging", "level_for_verbosity"]

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {
    "message",
    "asctime",
    "taskName",
}


def level_for_verbosity(verbosity: int) -> int:
    return logging.DEBUG if verbosity >= 4 else logging.INFO


class JsonFormatter(logging.Formatter):
    """One JSON object per record, keys in a stable order."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": round(record.created, 6),
            "level": record.levelname.lower(),
            "logger": record.name,
            "caller": f"{record.filename}:{record.lineno}",
            "msg": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and key not in line:
                line[key] = value
        if record.exc_info:
            line["err"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str, separators=(",", ":"))


def configure_logging(fmt: str = "text", verbosity: int = 0, stream: TextIO | None = None) -> None:
    """Replace the root handlers with one writing ``fmt`` lines to ``stream`` (stderr)."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(TEXT_FORMAT))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    logging.getLogger("pykubelet").setLevel(level_for_verbosity(verbosity))
