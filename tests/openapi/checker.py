"""Check a real response against the description: status documented, content type as
described, body valid against the schema (JSON Schema 2020-12, as OpenAPI 3.1 uses)."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from jsonschema import Draft202012Validator

METHODS = ("get", "put", "post", "delete", "patch")


@dataclass(frozen=True)
class Operation:
    path: str
    method: str
    item: Mapping[str, Any]
    op: Mapping[str, Any]

    @property
    def id(self) -> str:
        return str(self.op["operationId"])

    @property
    def ports(self) -> tuple[int, ...]:
        return tuple(self.item["x-kubelet-ports"])

    @property
    def authz(self) -> Mapping[str, Any]:
        return self.op["x-kubernetes-authorization"]  # type: ignore[no-any-return]


def operations(doc: Mapping[str, Any]) -> Iterator[Operation]:
    for path, item in doc["paths"].items():
        for method in METHODS:
            if method in item:
                yield Operation(path=path, method=method, item=item, op=item[method])


def resolve(doc: Mapping[str, Any], obj: Mapping[str, Any]) -> Mapping[str, Any]:
    ref = obj.get("$ref")
    if not isinstance(ref, str):
        return obj
    node: Any = doc
    for part in ref.removeprefix("#/").split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return resolve(doc, node)


def validate(doc: Mapping[str, Any], schema: Mapping[str, Any], value: object) -> None:
    """``#/components/...`` references resolve against the document root, so the schema is
    validated as the document itself with the schema's keywords merged in (the OpenAPI keys
    ``openapi``, ``info``, ``paths``... are not JSON Schema keywords and are ignored)."""
    errors = [
        f"{e.message} (at {'/'.join(str(p) for p in e.absolute_path) or 'the body'})"
        for e in Draft202012Validator({**doc, **schema}).iter_errors(value)
    ]
    if errors:
        raise AssertionError("body does not match the description: " + "; ".join(errors))


def check(
    doc: Mapping[str, Any],
    op: Operation,
    status: int,
    headers: Mapping[str, str],
    body: bytes,
) -> None:
    """Raise AssertionError (or a jsonschema ValidationError) unless the response is described."""
    responses = op.op["responses"]
    assert str(status) in responses, (
        f"{op.method.upper()} {op.path}: status {status} is not described "
        f"(described: {sorted(responses)}); body {body[:200]!r}"
    )
    r = resolve(doc, responses[str(status)])
    ctype = {k.lower(): v for k, v in headers.items()}.get("content-type")
    if r.get("x-no-content-type"):
        assert ctype is None, f"{op.id} {status}: Content-Type {ctype!r}, described as none"
    content = r.get("content")
    if not content:
        return
    if "*/*" in content:
        media = content["*/*"]
    else:
        assert ctype is not None, f"{op.id} {status}: no Content-Type, described {list(content)}"
        found = [k for k in content if _same_type(k, ctype)]
        assert found, f"{op.id} {status}: Content-Type {ctype!r}, described {list(content)}"
        media = content[found[0]]
    schema = media.get("schema")
    if schema is None:
        return
    value: object
    if (
        ctype is not None
        and ctype.startswith("application/json")
        and schema.get("type") != "string"
    ):
        value = json.loads(body)
    else:
        value = body.decode("utf-8")
    validate(doc, schema, value)


def _same_type(described: str, actual: str) -> bool:
    def norm(t: str) -> str:
        return ";".join(p.strip().lower() for p in t.split(";"))

    return norm(described) == norm(actual)
