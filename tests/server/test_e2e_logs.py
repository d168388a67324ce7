"""End to end: `pykubelet run` on the process runtime, a busybox pod, and /containerLogs read
(whole, tail, follow until the container ends) through the real TLS API with a client cert."""

from __future__ import annotations

import http.client
import ssl
import time

from tests.e2e.conftest import busybox_tar, image_cache, node  # noqa: F401  (fixtures)
from tests.e2e.node import NODE, Node, wait_for
from tests.e2e.test_standalone import pod_yaml

COUNTER = """\
  containers:
  - name: c
    image: busybox
    command:
    - sh
    - -c
    - i=0; while [ $i -lt 40 ]; do echo line $i; i=$((i+1)); sleep 0.1; done; echo bye >&2
  restartPolicy: Never
"""


def _conn(n: Node) -> http.client.HTTPSConnection:
    ctx = ssl.create_default_context(cafile=n.ca.cert_file)
    ctx.load_cert_chain(n.client.cert_file, n.client.key_file)
    return http.client.HTTPSConnection("127.0.0.1", n.port, context=ctx, timeout=20)


def _get(n: Node, path: str) -> tuple[int, dict[str, str], bytes]:
    conn = _conn(n)
    try:
        conn.request("GET", path)
        r = conn.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        conn.close()


def test_container_logs_through_the_agent(node: Node) -> None:  # noqa: F811 (fixture)
    node.start()
    node.write_pod("counter", pod_yaml("counter", COUNTER))
    wait_for(
        lambda: (x := node.container("counter", "c")) and x["state"].get("running"),
        20,
        "counter running",
    )
    base = f"/containerLogs/default/counter-{NODE}/c"
    wait_for(lambda: b"line 2\n" in _get(node, base)[2], 10, "three lines")
    status, headers, body = _get(node, base + "?tailLines=1&timestamps=true")
    assert status == 200 and "content-type" not in headers
    assert body.count(b"\n") == 1 and b"Z line " in body

    # follow from now until the container exits: every line arrives, then the stream ends
    conn = _conn(node)
    try:
        conn.request("GET", base + "?follow=true")
        resp = conn.getresponse()
        assert resp.status == 200
        started = time.monotonic()
        streamed = resp.read()  # returns when the kubelet ends the chunked body
        assert time.monotonic() - started < 30
    finally:
        conn.close()
    lines = streamed.decode().splitlines()
    assert lines[0] == "line 0" and "line 39" in lines and lines[-1] == "bye"
    wait_for(
        lambda: (x := node.container("counter", "c")) and x["state"].get("terminated"),
        20,
        "counter terminated",
    )
    status, _, body = _get(node, base + "?previous=true")
    assert status == 400  # no previous instance
