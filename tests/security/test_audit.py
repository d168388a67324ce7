"""Audit events: shape, non-blocking writer, rotation, drop counting."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from pykubelet.auth.types import UserInfo
from pykubelet.server.audit import (
    AUDIT_ID_ANNOTATION,
    COMMAND_ANNOTATION,
    AuditLog,
    AuditObserver,
    AuditRecord,
    audit_event,
    command_of,
    new_audit_id,
    rfc3339_micro,
)
from pykubelet.stats.agent_metrics import default_metrics


def record(**kw: object) -> AuditRecord:
    base: dict[str, object] = dict(
        audit_id="0b5e1a56-7a33-4a0e-9d59-1a2b3c4d5e6f",
        request_uri="/exec/default/web/app?command=id&output=1",
        verb="create",
        source_ips=["127.0.0.1"],
        user_agent="kubectl/v1.30",
        node_name="node-1",
        subresource="proxy",
        status_code=101,
        received=1_700_000_000.123456,
        completed=1_700_000_001.5,
        user=UserInfo(name="alice", uid="u1", groups=("system:masters", "system:authenticated")),
        decision="allow",
        reason='RBAC: allowed by ClusterRoleBinding "x"',
        command=["id", "-u"],
    )
    base.update(kw)
    return AuditRecord(**base)  # type: ignore[arg-type]


def test_event_shape() -> None:
    ev = audit_event(record())
    assert ev == {
        "kind": "Event",
        "apiVersion": "audit.k8s.io/v1",
        "level": "Metadata",
        "auditID": "0b5e1a56-7a33-4a0e-9d59-1a2b3c4d5e6f",
        "stage": "ResponseComplete",
        "requestURI": "/exec/default/web/app?command=id&output=1",
        "verb": "create",
        "user": {
            "username": "alice",
            "uid": "u1",
            "groups": ["system:masters", "system:authenticated"],
        },
        "sourceIPs": ["127.0.0.1"],
        "userAgent": "kubectl/v1.30",
        "objectRef": {
            "resource": "nodes",
            "name": "node-1",
            "apiVersion": "v1",
            "subresource": "proxy",
        },
        "responseStatus": {"metadata": {}, "code": 101},
        "requestReceivedTimestamp": "2023-11-14T22:13:20.123456Z",
        "stageTimestamp": "2023-11-14T22:13:21.500000Z",
        "annotations": {
            "authorization.k8s.io/decision": "allow",
            "authorization.k8s.io/reason": 'RBAC: allowed by ClusterRoleBinding "x"',
            "pykubelet.io/command": '["id", "-u"]',
        },
    }


def test_unauthenticated_event_has_empty_user_and_no_decision() -> None:
    ev = audit_event(record(user=None, decision="", reason="", command=None, status_code=401))
    assert ev["user"] == {}
    assert "annotations" not in ev
    assert ev["responseStatus"]["code"] == 401


def test_ids_and_timestamps() -> None:
    a, b = new_audit_id(), new_audit_id()
    assert a != b and len(a) == 36
    assert rfc3339_micro(0) == "1970-01-01T00:00:00.000000Z"


def wait_for(cond: object, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():  # type: ignore[operator]
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)


def test_writes_one_json_line_per_event(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "sub" / "audit.log")
    log.start()
    try:
        for i in range(50):
            assert log.emit(audit_event(record(audit_id=f"id-{i}")))
        wait_for(lambda: log.written == 50)
    finally:
        log.close()
    lines = (tmp_path / "sub" / "audit.log").read_text().splitlines()
    assert [json.loads(line)["auditID"] for line in lines] == [f"id-{i}" for i in range(50)]


def test_rotation_by_size_keeps_max_backups(tmp_path: Path) -> None:
    path = tmp_path / "audit.log"
    log = AuditLog(path, max_bytes=2000, max_backups=2)
    log.start()
    try:
        for i in range(40):
            log.emit(audit_event(record(audit_id=f"id-{i}")))
        wait_for(lambda: log.written == 40)
    finally:
        log.close()
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == ["audit.log", "audit.log.1", "audit.log.2"]
    for p in tmp_path.iterdir():
        assert p.stat().st_size <= 2000
        for line in p.read_text().splitlines():
            assert json.loads(line)["kind"] == "Event"
    newest = [json.loads(x)["auditID"] for x in path.read_text().splitlines()]
    assert newest[-1] == "id-39"


def test_emit_never_blocks_and_counts_drops(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "audit.log", queue_size=5)
    # The writer is not started: nothing drains the queue, as if the disk hung.
    registry = default_metrics().registry  # what /metrics serves
    before = registry.get_sample_value("pykubelet_audit_events_dropped_total") or 0.0
    done = threading.Event()

    def flood() -> None:
        for i in range(100):
            log.emit(audit_event(record(audit_id=f"id-{i}")))
        done.set()

    t = threading.Thread(target=flood)
    t.start()
    assert done.wait(10), "emit blocked"
    t.join()
    assert log.dropped == 95
    after = registry.get_sample_value("pykubelet_audit_events_dropped_total")
    assert after == before + 95
    log.start()
    wait_for(lambda: log.written == 5)
    log.close()


def test_bad_settings() -> None:
    with pytest.raises(ValueError):
        AuditLog("/tmp/x.log", queue_size=0)


@dataclass(frozen=True)
class Finished:
    """The shape of the server's RequestRecord, as the observer reads it."""

    port_kind: str = "full"
    method: str = "POST"
    path: str = "/run/default/web/app"
    query: str = "cmd=id+-u"
    remote_addr: str = "127.0.0.1"
    user_agent: str = "curl/8"
    user: UserInfo | None = field(default_factory=lambda: UserInfo(name="alice"))
    verb: str = "create"
    subresource: str = "proxy"
    decision: str = "allow"
    reason: str = "ok"
    status: int = 200
    received_at: float = 1_700_000_000.0
    duration_s: float = 0.25
    annotations: dict[str, str] = field(default_factory=dict)


def observed(tmp_path: Path, *records: Finished) -> list[dict[str, object]]:
    log = AuditLog(tmp_path / "audit.log")
    log.start()
    obs = AuditObserver(log, node_name="node-a")
    try:
        for r in records:
            obs.observe(r)
    finally:
        log.close()
    path = tmp_path / "audit.log"
    return [json.loads(x) for x in path.read_text().splitlines()] if path.exists() else []


def test_observer_maps_records_to_events(tmp_path: Path) -> None:
    notes = {AUDIT_ID_ANNOTATION: "id-1", COMMAND_ANNOTATION: '["id", "-u"]', "x/y": "z"}
    events = observed(
        tmp_path,
        Finished(annotations=notes),
        Finished(decision="error", reason="webhook down", status=500),
        Finished(user=None, decision="unauthenticated", status=401),
        Finished(port_kind="read-only", path="/pods", query="", verb="get", user=None,
                 decision="none"),
        Finished(port_kind="healthz", path="/healthz"),
    )  # fmt: skip
    assert len(events) == 4  # the health port is not audited
    first = events[0]
    assert first["auditID"] == "id-1"
    assert first["requestURI"] == "/run/default/web/app?cmd=id+-u"
    assert first["stageTimestamp"] == "2023-11-14T22:13:20.250000Z"
    assert first["objectRef"] == {
        "resource": "nodes",
        "name": "node-a",
        "apiVersion": "v1",
        "subresource": "proxy",
    }
    assert first["annotations"] == {
        "authorization.k8s.io/decision": "allow",
        "authorization.k8s.io/reason": "ok",
        "pykubelet.io/command": '["id", "-u"]',
        "x/y": "z",
    }
    assert events[1]["annotations"] == {
        "authorization.k8s.io/decision": "forbid",
        "authorization.k8s.io/reason": "authorizer error: webhook down",
        "pykubelet.io/command": '["id", "-u"]',  # from the /run query
    }
    assert events[2]["user"] == {}  # 401: no user, no decision, but what was attempted
    assert events[2]["annotations"] == {"pykubelet.io/command": '["id", "-u"]'}
    assert events[3]["annotations"]["authorization.k8s.io/decision"] == "allow"  # type: ignore[index]
    assert len({e["auditID"] for e in events}) == 4


def test_command_taken_from_the_request_when_no_handler_annotates(tmp_path: Path) -> None:
    assert command_of("/exec/ns/p/c", "command=sh&command=-c&command=echo+hi&tty=1") == [
        "sh",
        "-c",
        "echo hi",
    ]
    assert command_of("/run/ns/p/c", "cmd=ls%20-l%20/") == ["ls", "-l", "/"]
    assert command_of("/attach/ns/p/c", "output=1") is None
    assert command_of("/pods", "") is None
    (ev,) = observed(tmp_path, Finished(path="/exec/ns/p/c", query="command=id&command=-u"))
    assert ev["annotations"]["pykubelet.io/command"] == '["id", "-u"]'  # type: ignore[index]


def test_close_flushes_every_queued_event_in_order(tmp_path: Path) -> None:
    """The writer drains in batches; whatever was queued before ``close`` is on disk after it,
    in order, with nothing counted as lost."""
    log = AuditLog(tmp_path / "audit.log", max_bytes=20_000, max_backups=100)
    log.start()
    for i in range(1000):
        assert log.emit(audit_event(record(audit_id=f"id-{i}")))
    log.close()
    assert (log.written, log.dropped) == (1000, 0)

    def age(p: Path) -> int:  # audit.log.N is older the larger N; audit.log is the newest
        return int(p.name.rsplit(".", 1)[1]) if p.name != "audit.log" else 0

    files = sorted(tmp_path.iterdir(), key=age, reverse=True)
    ids = [json.loads(x)["auditID"] for p in files for x in p.read_text().splitlines()]
    assert ids == [f"id-{i}" for i in range(1000)]
    assert all(p.stat().st_size <= 20_000 for p in files)
