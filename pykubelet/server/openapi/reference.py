"""Render the description as a Markdown reference page (``docs/api-reference.md``).

Pure: a dict in, a string out. ``scripts/gen-api-reference.py`` writes the page and a test
checks the committed page equals what this renders, so the page never drifts from the file.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["render_reference"]

_METHODS = ("get", "put", "post", "delete", "patch", "head", "options")


def _cell(text: object) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def _ref_name(ref: str) -> str:
    return ref.rsplit("/", 1)[-1]


def _resolve(doc: Mapping[str, Any], obj: Mapping[str, Any]) -> Mapping[str, Any]:
    ref = obj.get("$ref")
    if not isinstance(ref, str):
        return obj
    node: Any = doc
    for part in ref.removeprefix("#/").split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return _resolve(doc, node)


def _schema_text(schema: Mapping[str, Any]) -> str:
    if "$ref" in schema:
        return f"`{_ref_name(schema['$ref'])}`"
    kind = schema.get("type", "")
    if kind == "array":
        return f"array of {_schema_text(schema.get('items', {}))}"
    parts = [f"{'/'.join(kind) if isinstance(kind, list) else kind}"] if kind else []
    if "enum" in schema:
        parts.append("one of " + ", ".join(f"`{v}`" for v in schema["enum"]))
    if "const" in schema:
        parts.append(f"exactly `{schema['const']!r}`")
    if "pattern" in schema:
        parts.append(f"matching `{schema['pattern']}`")
    if "minimum" in schema:
        parts.append(f"≥ {schema['minimum']}")
    if "default" in schema:
        parts.append(f"default `{schema['default']}`")
    return ", ".join(parts)


def _parameters(doc: Mapping[str, Any], params: Iterable[Mapping[str, Any]]) -> list[str]:
    rows = [_resolve(doc, p) for p in params]
    if not rows:
        return []
    out = ["| parameter | in | type | description |", "|---|---|---|---|"]
    for p in rows:
        name = f"`{p['name']}`" + (" (required)" if p.get("required") else "")
        text = p.get("description", "")
        if p.get("x-upstream-difference"):
            text += f" **Upstream difference**: {p['x-upstream-difference']}"
        out.append(
            f"| {name} | {p['in']} | {_cell(_schema_text(p.get('schema', {})))} | {_cell(text)} |"
        )
    return [*out, ""]


def _responses(doc: Mapping[str, Any], responses: Mapping[str, Any]) -> list[str]:
    out = ["| status | content type | body |", "|---|---|---|"]
    for code, raw in responses.items():
        r = _resolve(doc, raw)
        content = r.get("content", {})
        if r.get("x-no-content-type"):
            types = "(none)"
        else:
            types = ", ".join(f"`{t}`" for t in content) or "—"
        schemas = "; ".join(_schema_text(c.get("schema", {})) for c in content.values())
        body = _cell(r.get("description", ""))
        if schemas:
            body += f" ({_cell(schemas)})"
        if r.get("x-upstream-difference"):
            body += f" **Upstream difference**: {_cell(r['x-upstream-difference'])}"
        out.append(f"| {code} | {types} | {body} |")
    return [*out, ""]


def _authz(op: Mapping[str, Any]) -> str:
    a = op.get("x-kubernetes-authorization")
    if not a:
        return "none (no authentication on this port)"
    subs = " then ".join(f"`{a['resource']}/{s}`" for s in a["subresources"])
    return f"verb `{a['verb']}` on {subs}"


def _operation(
    doc: Mapping[str, Any], path: str, item: Mapping[str, Any], method: str
) -> list[str]:
    op = item[method]
    shown = "ANY" if item.get("x-kubelet-any-method") and method == "get" else method.upper()
    out = [f"### `{shown} {path}`", "", _cell(op.get("summary", "")), ""]
    if op.get("description"):
        out += [op["description"].strip(), ""]
    ports = ", ".join(str(p) for p in item.get("x-kubelet-ports", ()))
    facts = [f"- Ports: {ports}"]
    if item.get("x-kubelet-debugging-handler"):
        facts.append("- Debugging handler: 405 `Debug endpoints are disabled.` when they are off")
    facts.append(f"- Authorization (10250): {_authz(op)}")
    security = op.get("security", doc.get("security", []))
    facts.append("- Authentication (10250): " + ", ".join(f"`{k}`" for s in security for k in s))
    streaming = op.get("x-kubernetes-streaming")
    if streaming:
        protos = ", ".join(f"[{p}](#{p})" for p in streaming["protocols"])
        facts.append(f"- Streaming: {protos}")
    if op.get("x-upstream-difference"):
        facts.append(f"- **Upstream difference**: {_cell(op['x-upstream-difference'])}")
    out += [*facts, ""]
    out += _parameters(doc, [*item.get("parameters", ()), *op.get("parameters", ())])
    body = op.get("requestBody")
    if body:
        for ctype, c in body.get("content", {}).items():
            out += [f"Request body: `{ctype}`, {_schema_text(c.get('schema', {}))}", ""]
    out += _responses(doc, op.get("responses", {}))
    return out


def _streaming(doc: Mapping[str, Any]) -> list[str]:
    out = ["## Streaming protocols", ""]
    for name, proto in doc["components"].get("x-kubernetes-streaming-protocols", {}).items():
        out += [f"### {name}", "", f"Upgrade: `{proto['upgrade']}`.", ""]
        out += [proto["description"].strip(), ""]
        if "versions" in proto:
            out += ["| version | resize | status |", "|---|---|---|"]
            out += [f"| `{v['name']}` | {v['resize']} | {v['status']} |" for v in proto["versions"]]
            out.append("")
        if "streams" in proto:
            out += ["| streamtype | direction | |", "|---|---|---|"]
            out += [
                f"| `{s['streamtype']}` | {s['direction']} | {_cell(s['description'])} |"
                for s in proto["streams"]
            ]
            out.append("")
        if "subprotocols" in proto:
            out += ["| subprotocol | framing | status |", "|---|---|---|"]
            for s in proto["subprotocols"]:
                note = s.get("status", "")
                if "close" in s:
                    note += f"; {s['close']}"
                out.append(f"| `{s['name']}` | {s['framing']} | {_cell(note)} |")
            out.append("")
        if "channels" in proto:
            out += ["| channel | name | direction |", "|---|---|---|"]
            out += [
                f"| {c['number']} | {c['name']} | {c['direction']} |" for c in proto["channels"]
            ]
            out.append("")
        for err in proto.get("errors", ()):
            out.append(f"- {err['status']}: `{err['body']}`")
        if proto.get("errors"):
            out.append("")
        if proto.get("x-upstream-difference"):
            out += [f"**Upstream difference**: {proto['x-upstream-difference']}", ""]
    return out


def _schemas(doc: Mapping[str, Any]) -> list[str]:
    out = ["## Schemas", ""]
    for name, schema in doc["components"]["schemas"].items():
        out += [f"### {name}", ""]
        if schema.get("description"):
            out += [_cell(schema["description"]), ""]
        props = schema.get("properties", {})
        if props:
            required = set(schema.get("required", ()))
            out += ["| field | type |", "|---|---|"]
            for field, sub in props.items():
                mark = " (required)" if field in required else ""
                out.append(f"| `{field}`{mark} | {_cell(_schema_text(sub)) or 'object'} |")
            out.append("")
        else:
            out += [_cell(_schema_text(schema)), ""]
    return out


def render_reference(doc: Mapping[str, Any]) -> str:
    """The Markdown page for ``doc`` (the loaded description)."""
    info = doc["info"]
    out = [
        f"# {info['title']} — reference",
        "",
        "<!-- Generated from pykubelet/server/openapi/kubelet-api.yaml by"
        " scripts/gen-api-reference.py; do not edit by hand. -->",
        "",
        f"Version {info['version']}, OpenAPI {doc['openapi']}. {info['summary']}",
        "",
        info["description"].strip(),
        "",
        "## Servers",
        "",
    ]
    out += [f"- `{s['url']}`: {s['description']}" for s in doc["servers"]]
    out += ["", "## Security schemes", ""]
    for name, scheme in doc["components"]["securitySchemes"].items():
        out += [f"### {name}", "", scheme["description"].strip(), ""]
    for tag in doc["tags"]:
        section = [f"## {tag['name'].capitalize()}", "", tag["description"], ""]
        found = False
        for path, item in doc["paths"].items():
            for method in _METHODS:
                if method in item and tag["name"] in item[method].get("tags", ()):
                    section += _operation(doc, path, item, method)
                    found = True
        if found:
            out += section
    out += _streaming(doc)
    out += _schemas(doc)
    return "\n".join(out).rstrip("\n") + "\n"
