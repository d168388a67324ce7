"""The default request observer: one structured JSON line per request."""

from __future__ import annotations

import json
import logging

from pykubelet.server.settings import RequestRecord

__all__ = ["JsonRequestLog"]


class JsonRequestLog:
    """Writes each ``RequestRecord`` as a JSON object on ``logger`` at INFO."""

    def __init__(self, logger: logging.Logger | None = None) -> None:
        self._log = logger or logging.getLogger("pykubelet.server.requests")

    def observe(self, record: RequestRecord) -> None:
        if record.stage != "ResponseComplete" or not self._log.isEnabledFor(logging.INFO):
            return
        line = {
            "port": record.port_kind,
            "method": record.method,
            "path": record.path,
            "query": record.query,
            "remote": record.remote_addr,
            "userAgent": record.user_agent,
            "user": record.user.name if record.user else None,
            "groups": list(record.user.groups) if record.user else None,
            "verb": record.verb,
            "resource": record.resource,
            "subresource": record.subresource,
            "decision": record.decision,
            "status": record.status,
            "authMs": round(record.auth_duration_s * 1000, 3),
            "durationMs": round(record.duration_s * 1000, 3),
        }
        if record.peer_wait_s:
            line["peerWaitMs"] = round(record.peer_wait_s * 1000, 3)
        if record.reason:
            line["reason"] = record.reason
        self._log.info("%s", json.dumps(line, separators=(",", ":")))
