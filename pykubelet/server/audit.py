"""The audit log: one ``audit.k8s.io/v1`` ``Event`` JSON line per request on 10250 and 10255.

``audit_event`` builds the event (level Metadata, stage ResponseComplete, microsecond
timestamps, the authorization decision and reason as annotations, the command of exec/attach/run
as ``pykubelet.io/command``). ``AuditLog`` writes events without ever blocking a request: ``emit``
puts the line on a bounded queue and returns; a writer thread drains it into a size-rotated file
(``max_bytes``, ``max_backups``, as ``logging.handlers.RotatingFileHandler`` rotates: ``audit.log``,
``audit.log.1`` …). When the queue is full the event is dropped and counted (``dropped`` and the
Prometheus counter ``pykubelet_audit_events_dropped_total``).
"""

from __future__ import annotations

import json
import logging
import logging.handlers
import os
import queue
import threading
import urllib.parse
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from pykubelet.auth.types import UserInfo
from pykubelet.stats.agent_metrics import AUDIT_EVENTS_DROPPED

__all__ = [
    "AUDIT_EVENTS_DROPPED",
    "AUDIT_ID_ANNOTATION",
    "COMMAND_ANNOTATION",
    "AuditLog",
    "AuditObserver",
    "AuditRecord",
    "audit_event",
    "new_audit_id",
    "rfc3339_micro",
]

COMMAND_ANNOTATION = "pykubelet.io/command"
# Where the front door puts the request's audit ID among a request's annotations when the
# record has no ``audit_id`` of its own (not written to the event's annotations).
AUDIT_ID_ANNOTATION = "pykubelet.io/audit-id"
DECISION_ANNOTATION = "authorization.k8s.io/decision"
REASON_ANNOTATION = "authorization.k8s.io/reason"


def new_audit_id() -> str:
    return str(uuid.uuid4())


def rfc3339_micro(epoch_seconds: float) -> str:
    """``2026-11-28T11:55:47.123456Z``, the audit API's MicroTime."""
    return datetime.fromtimestamp(epoch_seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True, slots=True, kw_only=True)
class AuditRecord:
    """What the server knows about one finished request."""

    audit_id: str
    request_uri: str
    verb: str
    source_ips: Sequence[str]
    user_agent: str
    node_name: str
    subresource: str
    status_code: int
    received: float  # wall-clock epoch seconds
    completed: float
    user: UserInfo | None = None  # None: not authenticated (401) or the read-only port
    decision: str = ""  # "allow" | "forbid" | "" (not reached)
    reason: str = ""
    command: Sequence[str] | None = None
    extra_annotations: Mapping[str, str] = field(default_factory=dict)


def audit_event(rec: AuditRecord) -> dict[str, Any]:
    user: dict[str, Any] = {}
    if rec.user is not None:
        user["username"] = rec.user.name
        if rec.user.uid:
            user["uid"] = rec.user.uid
        if rec.user.groups:
            user["groups"] = list(rec.user.groups)
        if rec.user.extra:
            user["extra"] = {k: list(v) for k, v in rec.user.extra.items()}
    object_ref: dict[str, Any] = {"resource": "nodes", "name": rec.node_name, "apiVersion": "v1"}
    if rec.subresource:
        object_ref["subresource"] = rec.subresource
    annotations: dict[str, str] = {}
    if rec.decision:
        annotations[DECISION_ANNOTATION] = rec.decision
        annotations[REASON_ANNOTATION] = rec.reason
    if rec.command is not None:
        annotations[COMMAND_ANNOTATION] = json.dumps(list(rec.command))
    annotations.update(rec.extra_annotations)
    event: dict[str, Any] = {
        "kind": "Event",
        "apiVersion": "audit.k8s.io/v1",
        "level": "Metadata",
        "auditID": rec.audit_id,
        "stage": "ResponseComplete",
        "requestURI": rec.request_uri,
        "verb": rec.verb,
        "user": user,
        "sourceIPs": list(rec.source_ips),
        "userAgent": rec.user_agent,
        "objectRef": object_ref,
        "responseStatus": {"metadata": {}, "code": rec.status_code},
        "requestReceivedTimestamp": rfc3339_micro(rec.received),
        "stageTimestamp": rfc3339_micro(rec.completed),
    }
    if annotations:
        event["annotations"] = annotations
    return event


_STOP = object()


class AuditLog:
    """A non-blocking, size-rotated JSON-lines audit log. ``start()`` before ``emit``;
    ``close()`` flushes what is queued and stops the writer thread."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        max_bytes: int = 100 << 20,
        max_backups: int = 10,
        queue_size: int = 10_000,
    ) -> None:
        if max_bytes < 0 or max_backups < 0 or queue_size < 1:
            raise ValueError("max_bytes and max_backups must be >= 0, queue_size >= 1")
        self.path = os.fspath(path)
        self._handler = logging.handlers.RotatingFileHandler(
            self.path, maxBytes=max_bytes, backupCount=max_backups, encoding="utf-8", delay=True
        )
        self._handler.setFormatter(logging.Formatter("%(message)s"))
        os.makedirs(os.path.dirname(os.path.abspath(self.path)), exist_ok=True)
        self._queue: queue.Queue[object] = queue.Queue(maxsize=queue_size)
        self._thread: threading.Thread | None = None
        self.dropped = 0
        self.written = 0

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="audit-log", daemon=True)
            self._thread.start()

    def emit(self, event: Mapping[str, Any]) -> bool:
        """Queue one event; ``False`` (and counted) when the queue is full. Never blocks."""
        line = json.dumps(event, separators=(",", ":"), ensure_ascii=False)
        try:
            self._queue.put_nowait(line)
        except queue.Full:
            self.dropped += 1
            AUDIT_EVENTS_DROPPED.inc()
            return False
        return True

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is _STOP:
                break
            record = logging.LogRecord("audit", logging.INFO, "", 0, item, None, None)
            try:
                self._handler.emit(record)
                self._handler.flush()
                self.written += 1
            except Exception:  # supervision point: a full disk must not kill the writer
                self.dropped += 1
                AUDIT_EVENTS_DROPPED.inc()

    def close(self, timeout: float = 10.0) -> None:
        if self._thread is not None:
            self._queue.put(_STOP)
            self._thread.join(timeout)
            self._thread = None
        self._handler.close()


class FinishedRequest(Protocol):
    """The fields of the server's ``RequestRecord`` the audit log reads (structural, so the audit
    module does not depend on the server's composition types)."""

    @property
    def port_kind(self) -> str: ...
    @property
    def path(self) -> str: ...
    @property
    def query(self) -> str: ...
    @property
    def remote_addr(self) -> str: ...
    @property
    def user_agent(self) -> str: ...
    @property
    def user(self) -> UserInfo | None: ...
    @property
    def verb(self) -> str: ...
    @property
    def subresource(self) -> str: ...
    @property
    def decision(self) -> str: ...
    @property
    def reason(self) -> str: ...
    @property
    def status(self) -> int: ...
    @property
    def received_at(self) -> float: ...
    @property
    def duration_s(self) -> float: ...
    @property
    def annotations(self) -> Mapping[str, str]: ...


_DECISIONS = {"allow": "allow", "forbid": "forbid", "error": "forbid"}


def command_of(path: str, query: str) -> list[str] | None:
    """The command an exec (``command`` parameters, in order) or run (``cmd``, split on single
    spaces as the kubelet does) request asks for; ``None`` for anything else."""
    params = urllib.parse.parse_qs(query, keep_blank_values=True)
    if path.startswith("/exec/"):
        return params.get("command", [])
    if path.startswith("/run/"):
        cmd = params.get("cmd", [""])[0]
        return cmd.split(" ") if cmd else []
    return None


class AuditObserver:
    """The server's request observer that writes the audit log (10250 and 10255; the health
    port is not audited). Pass it as ``ServerBackends.observer`` (beside the request log)."""

    def __init__(self, log: AuditLog, *, node_name: str) -> None:
        self._log = log
        self._node = node_name

    def observe(self, record: FinishedRequest) -> None:
        if record.port_kind == "healthz":
            return
        notes = dict(record.annotations)
        audit_id = str(getattr(record, "audit_id", "") or notes.pop(AUDIT_ID_ANNOTATION, ""))
        notes.pop(AUDIT_ID_ANNOTATION, None)
        command = command_of(record.path, record.query)
        raw_command = notes.pop(COMMAND_ANNOTATION, None)
        if raw_command is not None:
            try:
                parsed = json.loads(raw_command)
                command = [str(c) for c in parsed] if isinstance(parsed, list) else [raw_command]
            except ValueError:
                command = [raw_command]
        if record.port_kind == "read-only":
            decision, reason = "allow", "read-only port: no authentication or authorization"
        else:
            decision = _DECISIONS.get(record.decision, "")
            reason = record.reason
            if record.decision == "error":
                reason = f"authorizer error: {record.reason}"
        uri = str(getattr(record, "request_uri", "")) or (
            record.path + ("?" + record.query if record.query else "")
        )
        self._log.emit(
            audit_event(
                AuditRecord(
                    audit_id=audit_id or new_audit_id(),
                    request_uri=uri,
                    verb=record.verb,
                    source_ips=[record.remote_addr] if record.remote_addr else [],
                    user_agent=record.user_agent,
                    node_name=self._node,
                    subresource=str(getattr(record, "granted_subresource", ""))
                    or record.subresource,
                    status_code=record.status,
                    received=record.received_at,
                    completed=record.received_at + record.duration_s,
                    user=record.user,
                    decision=decision,
                    reason=reason,
                    command=command,
                    extra_annotations=notes,
                )
            )
        )
