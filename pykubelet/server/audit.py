"""The audit log: one ``audit.k8s.io/v1`` ``Event`` JSON line per request on 10250 and 10255.

``audit_event`` builds the event (level Metadata, microsecond timestamps, the authorization
decision and reason as annotations, the command of exec/attach/run as ``pykubelet.io/command``).
Stage ``ResponseComplete`` when a request ends; a streaming request also gets a
``ResponseStarted`` event when its stream opens (as kube-apiserver does for long-running
requests), so a session is on record even if the agent dies during it.

``AuditLog`` writes events without ever blocking a request: ``emit`` puts the line on a bounded
queue and returns; a writer thread drains it in batches into a size-rotated file (``max_bytes``,
``max_backups``: ``audit.log``, ``audit.log.1`` …; mode 0600). Lines are UTF-8 JSON with line
separators escaped and undecodable bytes as U+FFFD. An event that cannot be queued, encoded or
written is counted (``dropped``, ``pykubelet_audit_events_dropped_total``) and logged.
"""

from __future__ import annotations

import collections
import contextlib
import functools
import json
import logging
import math
import os
import re
import threading
import time
import urllib.parse
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from pykubelet.auth.types import UserInfo
from pykubelet.stats.agent_metrics import AUDIT_EVENTS_DROPPED, AUDIT_EVENTS_SUPPRESSED

log = logging.getLogger(__name__)

__all__ = [
    "AUDIT_EVENTS_DROPPED",
    "AUDIT_EVENTS_SUPPRESSED",
    "AUDIT_ID_ANNOTATION",
    "COMMAND_ANNOTATION",
    "AuditLog",
    "AuditObserver",
    "AuditRecord",
    "STAGE_COMPLETE",
    "STAGE_STARTED",
    "audit_event",
    "encode_event",
    "new_audit_id",
    "rfc3339_micro",
]

COMMAND_ANNOTATION = "pykubelet.io/command"
# Where the front door puts the request's audit ID among a request's annotations when the
# record has no ``audit_id`` of its own (not written to the event's annotations).
AUDIT_ID_ANNOTATION = "pykubelet.io/audit-id"
STAGE_COMPLETE = "ResponseComplete"
STAGE_STARTED = "ResponseStarted"
DECISION_ANNOTATION = "authorization.k8s.io/decision"
REASON_ANNOTATION = "authorization.k8s.io/reason"


class _RandomBytes:
    """``os.urandom`` read 4 KiB at a time: one ``getrandom`` call per 256 audit IDs, not per
    request (the call was the largest single cost of a /healthz answer)."""

    __slots__ = ("_buf", "_pos")

    def __init__(self) -> None:
        self._buf, self._pos = b"", 0

    def take(self, n: int) -> bytes:
        if self._pos + n > len(self._buf):
            self._buf, self._pos = os.urandom(4096), 0
        self._pos += n
        return self._buf[self._pos - n : self._pos]


_random_bytes = _RandomBytes()
# a forked child must not hand out the parent's buffered bytes as its own IDs
os.register_at_fork(after_in_child=lambda: setattr(_random_bytes, "_pos", 1 << 30))


_VARIANT = {d: "89ab"[int(d, 16) & 3] for d in "0123456789abcdef"}


def new_audit_id() -> str:
    """A random (version 4) UUID, as kube-apiserver's audit IDs; formatted directly from 16
    random bytes (``str(uuid.uuid4())`` builds an int and a UUID object per request)."""
    h = _random_bytes.take(16).hex()
    # version 4 (the 13th digit) and the RFC 4122 variant (the 17th: 8, 9, a or b)
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{_VARIANT[h[16]]}{h[17:20]}-{h[20:]}"


def rfc3339_micro(epoch_seconds: float) -> str:
    """``2026-11-28T11:55:47.123456Z``, the audit API's MicroTime."""
    fraction, second = math.modf(epoch_seconds)  # rounded as datetime.fromtimestamp does
    micros = round(fraction * 1e6)
    if micros >= 1_000_000:
        second, micros = second + 1, micros - 1_000_000
    return f"{_second_prefix(int(second))}.{micros:06d}Z"


@functools.lru_cache(maxsize=4)
def _second_prefix(second: int) -> str:
    """The date and time of one second (every request in a second shares it: no strftime)."""
    return datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%S")


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
    stage: str = "ResponseComplete"  # or ResponseStarted: a stream was opened (101)


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
        "stage": rec.stage,
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


# How long the writer waits after the first event of a batch before writing. Events are in
# memory either way until written; this only bounds how stale the file may be.
BATCH_LINGER_S = 0.005

# Go's encoding/json escapes U+2028/U+2029 so a line stays one line for every reader; we also
# escape the other characters that some readers (editors, log shippers) treat as line breaks or
# that reorder text on screen (C1 controls, bidi overrides).
_UNSAFE = re.compile("[\u0085\u0080-\u009f\u2028\u2029\u200e\u200f\u202a-\u202e\u2066-\u2069]")
# Lone surrogates (undecodable request bytes, kept by surrogateescape) cannot be written as
# UTF-8: they become U+FFFD, as Go's json.Marshal does with invalid UTF-8.
_SURROGATES = re.compile("[\ud800-\udfff]")


def encode_event(event: Mapping[str, Any]) -> bytes:
    """One audit line: JSON, UTF-8, never a raw separator or an unencodable character."""
    text = json.dumps(event, separators=(",", ":"), ensure_ascii=False)
    if text.isascii():  # the usual line: nothing below can match
        return text.encode("ascii") + b"\n"
    text = _SURROGATES.sub("\ufffd", text)
    text = _UNSAFE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)
    return text.encode("utf-8") + b"\n"


class _RotatingFile:
    """An append-only file rotated by size (``audit.log``, ``audit.log.1`` …), created 0600.
    A failed write closes the file; the next write reopens it (space may have come back)."""

    def __init__(self, path: str, max_bytes: int, max_backups: int) -> None:
        self.path = path
        self._max_bytes = max_bytes
        self._max_backups = max_backups
        self._fd: int | None = None
        self._size = 0

    def _open(self) -> int:
        if self._fd is None:
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
            os.fchmod(fd, 0o600)  # an existing file made by an older version may be 0644
            self._fd, self._size = fd, os.fstat(fd).st_size
        return self._fd

    def _rotate(self) -> None:
        self.close()
        if self._max_backups == 0:
            os.truncate(self.path, 0)
            return
        for i in range(self._max_backups - 1, 0, -1):
            src = f"{self.path}.{i}"
            if os.path.exists(src):
                os.replace(src, f"{self.path}.{i + 1}")
        os.replace(self.path, self.path + ".1")

    def write_many(self, lines: Sequence[bytes]) -> tuple[int, OSError | None]:
        """Append ``lines`` with as few writes as rotation allows (a file never exceeds
        ``max_bytes`` because of a batch): how many were written, and the error that stopped
        the rest (the file is then closed; the next call reopens it)."""
        done = 0
        chunk: list[bytes] = []
        size = 0
        try:
            fd = self._open()
            for line in lines:
                over = self._max_bytes and self._size + size + len(line) > self._max_bytes
                if over and (chunk or self._size):
                    self._flush(fd, chunk)
                    done += len(chunk)
                    chunk, size = [], 0
                    if self._size:
                        self._rotate()
                        fd = self._open()
                chunk.append(line)
                size += len(line)
            self._flush(fd, chunk)
        except OSError as e:
            self.close()
            return done, e
        return done + len(chunk), None

    def _flush(self, fd: int, chunk: list[bytes]) -> None:
        view = memoryview(b"".join(chunk))
        while view:
            n = os.write(fd, view)
            view = view[n:]
            self._size += n

    def close(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = None


class AuditLog:
    """A non-blocking, size-rotated JSON-lines audit log. ``start()`` before ``emit``;
    ``close()`` flushes what is queued and stops the writer thread.

    Every event is either written (``written``) or counted as lost (``dropped`` and
    ``pykubelet_audit_events_dropped_total``): queue full, unencodable, or a failed write (full
    disk); losses are also logged (the first of a run of failures, then every 1000th)."""

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
        os.makedirs(os.path.dirname(os.path.abspath(self.path)), exist_ok=True)
        self._file = _RotatingFile(self.path, max_bytes, max_backups)
        # deque.append and popleft are atomic: the loop appends, the writer drains, and the
        # writer is woken only when it sleeps (not once per event: each wake-up costs the
        # serving thread a GIL hand-over, the largest per-request cost in a profile).
        self._queue: collections.deque[bytes] = collections.deque()
        self._queue_size = queue_size
        self._wake = threading.Event()
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._failing = 0  # consecutive lost events, for loud-but-bounded logging
        self.dropped = 0
        self.written = 0

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="audit-log", daemon=True)
            self._thread.start()

    def _lost(self, why: str, exc: BaseException | None = None, count: int = 1) -> None:
        with self._lock:
            before = self._failing
            self.dropped += count
            self._failing += count
            first = before == 0 or before // 1000 != self._failing // 1000
        AUDIT_EVENTS_DROPPED.inc(count)
        if first:
            log.error("audit event lost (%s; %d lost so far): %s", why, self.dropped, exc or "")

    def emit(self, event: Mapping[str, Any]) -> bool:
        """Queue one event; ``False`` (and counted) when it cannot be. Never blocks."""
        try:
            line = encode_event(event)
        except (TypeError, ValueError) as e:
            self._lost("cannot encode", e)
            return False
        return self.emit_line(line)

    def emit_line(self, line: bytes) -> bool:
        """Queue one encoded event (``encode_event``'s bytes); as ``emit``."""
        if len(self._queue) >= self._queue_size:
            self._lost("queue full")
            return False
        self._queue.append(line)
        if not self._wake.is_set():
            self._wake.set()
        return True

    def _run(self) -> None:
        while True:
            self._wake.wait()
            if not self._stopping:
                time.sleep(BATCH_LINGER_S)  # let a burst gather: one write per batch
            self._wake.clear()
            batch: list[bytes] = []
            with contextlib.suppress(IndexError):
                while True:
                    batch.append(self._queue.popleft())
            if batch:
                self._write(batch)
            if self._stopping and not self._queue:
                break

    def _write(self, batch: list[bytes]) -> None:
        written, error = self._file.write_many(batch)
        if error is not None:  # a full disk: counted and logged, the writer carries on
            self._lost("write failed", error, count=len(batch) - written)
        with self._lock:
            self.written += written
            if written == len(batch) and self._failing:
                log.warning("audit log writable again after %d lost events", self._failing)
                self._failing = 0

    def close(self, timeout: float = 10.0) -> None:
        if self._thread is not None:
            self._stopping = True
            self._wake.set()
            self._thread.join(timeout)
            self._thread = None
            self._stopping = False
        self._file.close()


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
    if not path.startswith(("/exec/", "/run/")):
        return None
    params = urllib.parse.parse_qs(query, keep_blank_values=True)
    if path.startswith("/exec/"):
        return params.get("command", [])
    if path.startswith("/run/"):
        cmd = params.get("cmd", [""])[0]
        return cmd.split(" ") if cmd else []
    return None


# Caps on what an unauthenticated client controls, so it cannot fill the log: field lengths
# (always for the User-Agent; the URI and command only before authentication) and a token bucket
# of events per second. Suppressed events are counted and logged, never silently lost.
USER_AGENT_MAX = 1024
UNAUTHENTICATED_FIELD_MAX = 2048
UNAUTHENTICATED_RATE = 20.0  # events per second
UNAUTHENTICATED_BURST = 200.0


def truncate(value: str, limit: int) -> str:
    if len(value) <= limit:
        return value
    return f"{value[:limit]}...[truncated {len(value) - limit} characters]"


class _Bucket:
    def __init__(self, rate: float, burst: float) -> None:
        self._rate, self._burst = rate, burst
        self._tokens, self._last = burst, time.monotonic()

    def take(self, now: float) -> bool:
        self._tokens = min(self._burst, self._tokens + (now - self._last) * self._rate)
        self._last = now
        if self._tokens < 1.0:
            return False
        self._tokens -= 1.0
        return True


# Stand-ins for the three values that differ between repeated requests, and how encode_event
# writes them (JSON escapes the NUL), so a line's template can be cut at them.
_MARKS = ("\x00id", "\x00received", "\x00stage")
_MARKS_JSON = tuple(m.replace("\x00", "\\u0000").encode() for m in _MARKS)
_PLAIN_ID = re.compile(r"[0-9a-f-]+")  # what new_audit_id makes: nothing to escape


def _line_template(rec: AuditRecord) -> tuple[bytes, bytes, bytes, bytes] | None:
    """``encode_event(audit_event(rec))`` cut where the audit ID and the two timestamps go;
    None if a cut is ambiguous (a field of the request holds a mark's text)."""
    event = audit_event(rec)
    event["auditID"], event["requestReceivedTimestamp"], event["stageTimestamp"] = _MARKS
    line = encode_event(event)
    if any(line.count(m) != 1 for m in _MARKS_JSON):
        return None
    a, rest = line.split(_MARKS_JSON[0])
    b, rest = rest.split(_MARKS_JSON[1])
    c, d = rest.split(_MARKS_JSON[2])
    return a, b, c, d


class _LineTemplates:
    """Encoded lines of repeated requests (a probe, a scraper): they differ only in the audit
    ID and the two timestamps, so the rest is encoded once and those three spliced in, the
    same bytes ``encode_event`` writes. Keyed by every other value of the record; the user by
    identity, and held, so that its id cannot be reused by another user while cached."""

    def __init__(self, size: int = 512) -> None:
        self._size = size
        self._lines: dict[tuple[object, ...], tuple[object, tuple[bytes, bytes, bytes, bytes]]] = {}

    def line(
        self,
        key: tuple[object, ...],
        user: UserInfo | None,
        audit_id: str,
        received: float,
        completed: float,
        record: Callable[[], AuditRecord],
    ) -> bytes:
        """The line of the request ``key`` (its ``user`` apart) with these three values;
        ``record`` builds the whole record when the template is not cached yet."""
        hit = self._lines.get(key)
        if hit is None or hit[0] is not user:
            rec = record()
            parts = _line_template(rec)
            if parts is None:
                return encode_event(audit_event(rec))
            if len(self._lines) >= self._size:
                self._lines.clear()  # many distinct requests: start over, stay bounded
            self._lines[key] = hit = (user, parts)
        a, b, c, d = hit[1]
        stamps = rfc3339_micro(received).encode(), rfc3339_micro(completed).encode()
        return b"".join((a, audit_id.encode(), b, stamps[0], c, stamps[1], d))


class AuditObserver:
    """The server's request observer that writes the audit log (10250 and 10255; the health
    port is not audited). Pass it as ``ServerBackends.observer`` (beside the request log).

    Unauthenticated events (no user: 401, 404 before auth, the read-only port) are truncated
    and rate-limited (``unauthenticated_rate`` per second, bursts of ``unauthenticated_burst``);
    what the limit suppresses is counted (``suppressed``,
    ``pykubelet_audit_events_suppressed_total``) and logged."""

    def __init__(
        self,
        log: AuditLog,
        *,
        node_name: str,
        unauthenticated_rate: float = UNAUTHENTICATED_RATE,
        unauthenticated_burst: float = UNAUTHENTICATED_BURST,
    ) -> None:
        self._log = log
        self._node = node_name
        self._bucket = _Bucket(unauthenticated_rate, unauthenticated_burst)
        self._templates = _LineTemplates()
        self.suppressed = 0

    def _admit_unauthenticated(self) -> bool:
        if self._bucket.take(time.monotonic()):
            return True
        self.suppressed += 1
        AUDIT_EVENTS_SUPPRESSED.inc()
        if self.suppressed == 1 or self.suppressed % 1000 == 0:
            log.warning(
                "audit: unauthenticated events over %s/s suppressed (%d so far)",
                self._bucket._rate,
                self.suppressed,
            )
        return False

    def observe(self, record: FinishedRequest) -> None:
        if record.port_kind == "healthz":
            return
        anonymous = record.user is None
        if anonymous and not self._admit_unauthenticated():
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
        if anonymous:
            uri = truncate(uri, UNAUTHENTICATED_FIELD_MAX)
            if command is not None and len(json.dumps(command)) > UNAUTHENTICATED_FIELD_MAX:
                notes[COMMAND_ANNOTATION + "-truncated"] = "true"
                command = [truncate(" ".join(command), UNAUTHENTICATED_FIELD_MAX)]
        audit_id = audit_id or new_audit_id()
        user_agent = truncate(record.user_agent, USER_AGENT_MAX)
        subresource = str(getattr(record, "granted_subresource", "")) or record.subresource
        if anonymous:
            reason = truncate(reason, UNAUTHENTICATED_FIELD_MAX)
        stage = str(getattr(record, "stage", "") or STAGE_COMPLETE)

        def full_record() -> AuditRecord:
            return AuditRecord(
                audit_id=audit_id,
                request_uri=uri,
                verb=record.verb,
                source_ips=[record.remote_addr] if record.remote_addr else [],
                user_agent=user_agent,
                node_name=self._node,
                subresource=subresource,
                status_code=record.status,
                received=record.received_at,
                completed=record.received_at + record.duration_s,
                user=record.user,
                decision=decision,
                reason=reason,
                command=command,
                extra_annotations=notes,
                stage=stage,
            )

        if command is not None or notes or not _PLAIN_ID.fullmatch(audit_id):
            self._log.emit(audit_event(full_record()))
            return
        key = (
            id(record.user),
            uri,
            record.verb,
            record.remote_addr,
            user_agent,
            subresource,
            record.status,
            decision,
            reason,
            stage,
        )
        try:
            line = self._templates.line(
                key,
                record.user,
                audit_id,
                record.received_at,
                record.received_at + record.duration_s,
                full_record,
            )
        except (TypeError, ValueError):
            self._log.emit(audit_event(full_record()))  # counts it as lost, says why
            return
        self._log.emit_line(line)
