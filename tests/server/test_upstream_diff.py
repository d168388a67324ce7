"""The differential run: each request of ``devtools.upstream_diff.DIFF_REQUESTS`` sent to a real
pykubelet running the same pods as the upstream kubelet v1.20.2 did when it answered the
recording in ``tests/fixtures/upstream/responses.json``; what the request compares must be equal.
Differences kept on purpose are listed in docs/api.md and in DELIBERATE below, with the reason."""

from __future__ import annotations

import json
import ssl

import pytest

from devtools.upstream_diff import DIFF_REQUESTS, DiffRequest, Exchange, Target, fetch
from tests.server.upstream_node import UPSTREAM, UpstreamNode

RECORDED = {
    name: Exchange.from_json(obj)
    for name, obj in json.loads((UPSTREAM / "responses.json").read_text()).items()
}

# Differences kept on purpose (docs/api.md, "Deliberate differences"): request name → what
# pykubelet answers instead (the fields the request compares). Upstream's answer is still in
# responses.json, and the test checks it still differs, so a re-recording that changes it shows.
_POD_NOT_FOUND = {
    "status": 404,
    "body": "pod not found",
    "content-type": "text/plain; charset=utf-8",
}
DELIBERATE: dict[str, dict[str, object]] = {
    # aiohttp's parser (llhttp) knows only upper-case registered methods: 400 before routing.
    # Go takes any token and go-restful answers 405. No HTTP client sends lower case.
    "pods-lower-case-method": {
        "status": 400,
        "content-type": "text/plain; charset=utf-8",
        "x-content-type-options": None,
    },
    # /metrics answers the text format whatever Accept asks (prometheus_client has no protobuf
    # encoder); Prometheus asks for protobuf first and takes the text format.
    "metrics-accept-protobuf": {
        "status": 200,
        "content-type": "text/plain; version=0.0.4; charset=utf-8",
        "x-content-type-options": None,
    },
    # The {uid} segment is checked on every endpoint (docs/streaming.md): a request aimed at
    # another incarnation of the pod must not reach this one. Upstream checks it on
    # /portForward only (that request is in the set and matches).
    "run-wrong-uid": _POD_NOT_FOUND,
    "exec-wrong-uid": {**_POD_NOT_FOUND, "x-content-type-options": None},
}


def _target(up: UpstreamNode) -> Target:
    n = up.node
    ctx = ssl.create_default_context(cafile=n.ca.cert_file)
    ctx.load_cert_chain(n.client.cert_file, n.client.key_file)
    shapes = next(i for i in n.get("/pods")["items"] if i["metadata"]["name"].startswith("shapes-"))
    return Target(
        port=n.port,
        ssl_context=ctx,
        pod=shapes["metadata"]["name"],
        uid=shapes["metadata"]["uid"],
        node="",
    )


def test_every_request_was_recorded() -> None:
    assert sorted(RECORDED) == sorted(r.name for r in DIFF_REQUESTS)


@pytest.mark.parametrize("req", DIFF_REQUESTS, ids=lambda r: r.name)
def test_same_answer_as_upstream(upstream_node: UpstreamNode, req: DiffRequest) -> None:
    ours = fetch(_target(upstream_node), req).compared(req.compare)
    theirs = RECORDED[req.name].compared(req.compare)
    if req.name in DELIBERATE:
        expected = {k: DELIBERATE[req.name].get(k) for k in req.compare}
        assert (ours, theirs != expected) == (expected, True)
    else:
        assert ours == theirs
