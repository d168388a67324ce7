"""The shipped description: valid OpenAPI 3.1, the reference page generated from it is the one
committed, its authorization attributes are the ones the server computes, and the walk table of
test_walk.py covers it exactly."""

from __future__ import annotations

import subprocess
import sys
import urllib.parse
from pathlib import Path

import pytest
from openapi_spec_validator import validate as validate_openapi

from pykubelet.auth.attributes import attributes_for
from pykubelet.server.openapi import load_description
from pykubelet.server.openapi.reference import render_reference
from tests.openapi.checker import check, operations, resolve, validate
from tests.openapi.test_walk import WALK

ROOT = Path(__file__).resolve().parent.parent.parent
DOC = load_description()
OPS = list(operations(DOC))


def test_the_description_is_valid_openapi_3_1() -> None:
    assert DOC["openapi"] == "3.1.0"
    validate_openapi(DOC)


def test_the_committed_reference_page_is_the_generated_one() -> None:
    page = (ROOT / "docs" / "api-reference.md").read_text(encoding="utf-8")
    assert page == render_reference(DOC), "run scripts/gen-api-reference.py"
    r = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "gen-api-reference.py"), "--check"],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stderr


@pytest.mark.parametrize("op", OPS, ids=lambda o: o.id)
def test_authorization_extension_is_what_the_server_asks(op: object) -> None:
    from tests.openapi.checker import Operation

    assert isinstance(op, Operation)
    path = op.path.replace("{path}", "x").replace("{", "").replace("}", "")
    attrs = attributes_for(op.method.upper(), path)
    assert (attrs.verb, list(attrs.subresources)) == (
        op.authz["verb"],
        op.authz["subresources"],
    )


def test_every_operation_has_a_walk() -> None:
    assert sorted(WALK) == sorted(op.id for op in OPS)


def test_query_parameters_of_the_walk_are_described() -> None:
    """The walk only sends parameters the description names (so the table cannot drift)."""
    for op in OPS:
        params = [
            resolve(DOC, p) for p in (*op.item.get("parameters", ()), *op.op.get("parameters", ()))
        ]
        names = {p["name"] for p in params if p["in"] == "query"}
        for call in WALK[op.id]:
            sent = {k for k, _ in urllib.parse.parse_qsl(call.query, keep_blank_values=True)}
            assert sent <= names, (op.id, sent - names)


def test_the_checker_rejects_what_the_description_does_not_say() -> None:
    pods = next(op for op in OPS if op.id == "listPods")
    json_ct = {"Content-Type": "application/json"}
    with pytest.raises(AssertionError, match="status 418"):
        check(DOC, pods, 418, {}, b"")
    with pytest.raises(AssertionError, match="Content-Type"):
        check(DOC, pods, 200, {"Content-Type": "text/plain"}, b"{}")
    with pytest.raises(AssertionError, match="does not match"):
        check(DOC, pods, 200, json_ct, b'{"kind":"PodList","apiVersion":"v1","metadata":{}}')
    with pytest.raises(AssertionError, match="does not match"):
        check(DOC, pods, 401, {"Content-Type": "text/plain; charset=utf-8"}, b"Unauthorized\n")
    logs = next(op for op in OPS if op.id == "containerLogs")
    with pytest.raises(AssertionError, match="described as none"):
        check(DOC, logs, 200, {"Content-Type": "text/plain"}, b"x")
    check(
        DOC, pods, 200, json_ct, b'{"kind":"PodList","apiVersion":"v1","metadata":{},"items":null}'
    )


def test_the_status_schema_takes_upstreams_exit_code_status() -> None:
    schema = DOC["components"]["schemas"]["Status"]
    upstream = {
        "metadata": {},
        "status": "Failure",
        "message": "command terminated with non-zero exit code: exit code 3",
        "reason": "NonZeroExitCode",
        "details": {"causes": [{"reason": "ExitCode", "message": "3"}]},
    }
    validate(DOC, schema, upstream)
    with pytest.raises(AssertionError, match="does not match"):
        validate(DOC, schema, {"metadata": {}, "status": "Maybe"})
