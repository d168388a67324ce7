"""/pods, /runningpods/, /healthz, /configz over real TLS (reference §1.2, §7, §8.6)."""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any

from devtools.upstream_diff import FIXTURE_PODS
from pykubelet.api import Pod
from pykubelet.server import ServerBackends
from tests.e2e.node import NODE
from tests.server.harness import (
    Pki,
    StaticPods,
    TinyRuntime,
    container,
    fetch,
    running,
    sandbox,
    settings_for,
)
from tests.server.logpods import make_pod
from tests.server.logpods import running as running_status
from tests.server.upstream_node import UPSTREAM, UpstreamNode


def two_pods() -> StaticPods:
    return StaticPods(
        [
            make_pod("api", ["app"], [running_status("app", "c1")]),
            make_pod("web", ["nginx", "sidecar"], [running_status("nginx", "c2")]),
        ]
    )


async def test_pods_body_is_the_exact_podlist(pki: Pki) -> None:
    pods = two_pods()
    async with running(settings_for(pki), ServerBackends(pods=pods, runtime=TinyRuntime())) as s:
        assert s.full_port
        ctx = pki.client_context(pki.admin)
        r = await fetch(s.full_port, "/pods", ctx=ctx)
        assert r.status == 200 and r.headers["content-type"] == "application/json"
        # the item shapes are compared with upstream's in test_pods_body_matches_upstream below
        assert r.body.startswith(b'{"kind":"PodList","apiVersion":"v1","metadata":{},"items":[{')
        assert r.body.endswith(b"}]}\n")
        doc = json.loads(r.body)
        assert [p["metadata"]["name"] for p in doc["items"]] == ["api", "web"]
        assert "kind" not in doc["items"][0]
        # a new snapshot is served (the cache follows the lister)
        pods.pods = pods.pods[:1]
        r2 = await fetch(s.full_port, "/pods/", ctx=ctx)
        assert [p["metadata"]["name"] for p in json.loads(r2.body)["items"]] == ["api"]
        pods.pods = ()
        r3 = await fetch(s.full_port, "/pods", ctx=ctx)
        assert r3.body == (UPSTREAM / "pods-empty.json").read_bytes()


# ----- /pods against the upstream kubelet's recorded bodies (tests/fixtures/upstream/) -----

_PODS_PREFIX = '{"kind":"PodList","apiVersion":"v1","metadata":{},"items":['
_TIME = re.compile(r'"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?Z"')
_UID = re.compile(r'"[0-9a-f]{32}"')  # metadata.uid and the config.hash annotation
_CONTAINER_ID = re.compile(r'"(containerd|pykubelet)://[0-9a-f]{64}"')
_IMAGE_ID = re.compile(r'"imageID":"sha256:[0-9a-f]{64}"')
_POD_IP = re.compile(r'"(podIP|ip)":"[0-9.]+"')
_HOST_IP = re.compile(r'"hostIP":"[0-9.]+",')


def _items(body: str) -> dict[str, str]:
    """Each item's exact JSON text, by pod name (upstream lists pods in map order)."""
    assert body.startswith(_PODS_PREFIX) and body.endswith("]}\n"), body[:80]
    decoder, i, out = json.JSONDecoder(), len(_PODS_PREFIX), {}
    while True:
        obj, end = decoder.raw_decode(body, i)
        out[obj["metadata"]["name"]] = body[i:end]
        if body[end] != ",":
            return out
        i = end + 1


def _normalised(text: str, node: str) -> str:
    """Replace what legitimately differs between two nodes running the same manifests, and
    nothing else: the node name, UIDs (upstream hashes Go structs), times, runtime container
    IDs, image IDs (each side built its busybox image from the local busybox-static) and pod
    IPs."""
    for pod in FIXTURE_PODS:
        text = text.replace(f"{pod}-{node}", f"{pod}-NODE")
    text = text.replace(f'"nodeName":"{node}"', '"nodeName":"NODE"')
    text = _UID.sub('"UID"', text)
    text = _TIME.sub('"TIME"', text)
    text = _CONTAINER_ID.sub('"RUNTIME://ID"', text)
    text = _IMAGE_ID.sub('"imageID":"sha256:IMAGE"', text)
    return _POD_IP.sub(r'"\1":"IP"', text)


def test_pods_body_matches_upstream(upstream_node: UpstreamNode) -> None:
    """Same manifests on both kubelets: the same bytes per pod (key order, omitted fields,
    defaults, escaping), apart from the values _normalised names."""
    assert upstream_node.empty_pods == (UPSTREAM / "pods-empty.json").read_bytes()
    recorded = (UPSTREAM / "pods-running.json").read_text()
    upstream_node_name = json.loads(recorded)["items"][0]["spec"]["nodeName"]
    theirs = {
        name.replace(f"-{upstream_node_name}", "-NODE"): _normalised(text, upstream_node_name)
        for name, text in _items(recorded).items()
    }
    ours = {
        name.replace(f"-{NODE}", "-NODE"): _normalised(text, NODE)
        for name, text in _items(upstream_node.node.get_bytes("/pods").decode()).items()
    }
    # Deliberate (docs/api.md): pykubelet reports hostIP without an API server; upstream v1.20
    # standalone leaves it out (it reads it from the Node object it does not have).
    ours = {name: _HOST_IP.sub("", text, count=1) for name, text in ours.items()}
    assert ours.keys() == theirs.keys()
    for name in theirs:
        assert ours[name] == theirs[name], name


def _k8s_call(port: int, pki: Pki) -> Any:
    from kubernetes import client

    cfg = client.Configuration()
    cfg.host = f"https://127.0.0.1:{port}"
    cfg.ssl_ca_cert = pki.ca.cert_file
    cfg.cert_file = pki.admin.cert_file
    cfg.key_file = pki.admin.key_file
    with client.ApiClient(cfg) as api:
        resp = api.call_api("GET", cfg.host + "/pods", header_params={"Accept": "application/json"})
        resp.read()
        return api.response_deserialize(resp, {"200": "V1PodList"}).data


async def test_official_kubernetes_client_reads_a_v1podlist(pki: Pki) -> None:
    from kubernetes.client import V1PodList

    async with running(
        settings_for(pki), ServerBackends(pods=two_pods(), runtime=TinyRuntime())
    ) as s:
        assert s.full_port
        result = await asyncio.to_thread(_k8s_call, s.full_port, pki)
    assert isinstance(result, V1PodList)
    names = []
    for p in result.items:  # the client models every field as optional
        assert p.metadata is not None
        names.append(p.metadata.name)
    assert names == ["api", "web"]
    web_spec, api_status = result.items[1].spec, result.items[0].status
    assert web_spec is not None and api_status is not None
    assert web_spec.containers[1].name == "sidecar"
    assert api_status.phase == "Running"
    assert api_status.container_statuses is not None
    assert api_status.container_statuses[0].container_id == "pykubelet://c1"


async def test_runningpods_from_the_runtime(pki: Pki) -> None:
    rt = TinyRuntime(sandboxes=[sandbox("s1", "web", uid="u-1"), sandbox("s2", "idle")])
    rt.containers = {"a": container("a", "s1", "nginx", image="nginx:1")}
    async with running(settings_for(pki), ServerBackends(pods=StaticPods(), runtime=rt)) as s:
        assert s.full_port
        r = await fetch(s.full_port, "/runningpods/", ctx=pki.client_context(pki.admin))
    assert r.status == 200 and r.headers["content-type"] == "application/json"
    assert r.body.endswith(b"\n")
    doc = json.loads(r.body)
    assert (doc["kind"], doc["apiVersion"]) == ("PodList", "v1")
    assert [i["metadata"] for i in doc["items"]] == [
        {"name": "web", "namespace": "default", "uid": "u-1", "creationTimestamp": None}
    ]
    assert doc["items"][0]["spec"]["containers"][0]["image"] == "nginx:1"


class FailingCheck:
    name = "disk"

    def check(self) -> str | None:
        return "disk on fire"


async def test_healthz_bodies(pki: Pki) -> None:
    pods = StaticPods()
    async with running(settings_for(pki), ServerBackends(pods=pods, runtime=TinyRuntime())) as s:
        assert s.full_port
        ctx = pki.client_context(pki.admin)

        async def get(target: str) -> tuple[int, bytes]:
            assert s.full_port
            r = await fetch(s.full_port, target, ctx=ctx)
            assert r.headers["content-type"] == "text/plain; charset=utf-8"
            return r.status, r.body

        assert await get("/healthz") == (200, b"ok")
        assert await get("/healthz/ping") == (200, b"ok")
        assert await get("/healthz/log") == (200, b"ok")
        assert await get("/healthz/syncloop") == (200, b"ok")
        assert await get("/healthz?verbose") == (
            200,
            b"[+]ping ok\n[+]log ok\n[+]syncloop ok\nhealthz check passed\n",
        )
        assert await get("/healthz?exclude=nosuch&verbose") == (
            200,
            b"[+]ping ok\n[+]log ok\n[+]syncloop ok\n"
            b'warn: some health checks cannot be excluded: no matches for "nosuch"\n'
            b"healthz check passed\n",
        )
        pods.healthy = False
        assert await get("/healthz/syncloop") == (
            500,
            b"internal server error: sync Loop took longer than expected\n",
        )
        assert await get("/healthz") == (
            500,
            b"[+]ping ok\n[+]log ok\n[-]syncloop failed: reason withheld\nhealthz check failed\n",
        )
        assert await get("/healthz?exclude=syncloop") == (200, b"ok")
        assert await get("/healthz?exclude=syncloop&verbose") == (
            200,
            b"[+]ping ok\n[+]log ok\n[+]syncloop excluded: ok\nhealthz check passed\n",
        )
        r = await fetch(s.full_port, "/healthz", method="POST", ctx=ctx)
        assert r.status == 500  # any method, as the mux handler


async def test_extra_health_checks_and_routes_plug_in(pki: Pki) -> None:
    from aiohttp import web

    async def hello(request: web.Request) -> web.Response:
        return web.Response(text="hi")

    b = ServerBackends(
        pods=StaticPods(),
        runtime=TinyRuntime(),
        health_checks=[FailingCheck()],
        extra_routes=[web.get("/checkpoint/{ns}/{pod}/{ctr}", hello)],
        extra_read_only_routes=[web.get("/stats/summary", hello)],
    )
    async with running(settings_for(pki, read_only_port=-1), b) as s:
        assert s.full_port and s.read_only_port
        ctx = pki.client_context(pki.admin)
        r = await fetch(s.full_port, "/healthz/disk", ctx=ctx)
        assert (r.status, r.body) == (500, b"internal server error: disk on fire\n")
        r = await fetch(s.full_port, "/checkpoint/a/b/c", ctx=ctx)
        assert (r.status, r.body) == (200, b"hi")
        r = await fetch(s.full_port, "/checkpoint/a/b/c", ctx=pki.client_context(None))
        assert r.status == 401  # a plugged-in prefix is behind auth, not 404
        r = await fetch(s.read_only_port, "/stats/summary")
        assert (r.status, r.body) == (200, b"hi")


async def test_configz(pki: Pki) -> None:
    cfg = {"port": 10250, "authentication": {"anonymous": {"enabled": False}}}
    b = ServerBackends(pods=StaticPods(), runtime=TinyRuntime())
    async with running(settings_for(pki, configz=cfg), b) as s:
        assert s.full_port
        ctx = pki.client_context(pki.admin)
        for method in ("GET", "PUT", "DELETE"):
            r = await fetch(s.full_port, "/configz", method=method, ctx=ctx)
            assert r.status == 200 and r.headers["content-type"] == "application/json"
            assert json.loads(r.body) == {"kubeletconfig": cfg}


async def test_debug_flags_v(pki: Pki) -> None:
    import logging

    b = ServerBackends(pods=StaticPods(), runtime=TinyRuntime())
    logger = logging.getLogger("pykubelet")
    before = logger.level
    try:
        async with running(settings_for(pki), b) as s:
            assert s.full_port
            ctx = pki.client_context(pki.admin)
            r = await fetch(s.full_port, "/debug/flags/v", method="PUT", body=b"5", ctx=ctx)
            assert (r.status, r.body) == (200, b"successfully set klog.logging.verbosity to 5\n")
            assert logger.level == logging.DEBUG
            r = await fetch(s.full_port, "/debug/flags/v", method="PUT", body=b"x", ctx=ctx)
            assert r.status == 400
            r = await fetch(s.full_port, "/debug/flags/v", ctx=ctx)
            assert (r.status, r.body) == (406, b"unsupported http method\n")
            r = await fetch(s.full_port, "/debug/pprof/", ctx=ctx)
            assert (r.status, r.body) == (404, b"404: Page Not Found")
    finally:
        logger.setLevel(before)


async def test_healthz_exclude_is_repeatable_not_comma_split(pki: Pki) -> None:
    async with running(
        settings_for(pki), ServerBackends(pods=StaticPods(), runtime=TinyRuntime())
    ) as s:
        assert s.full_port
        r = await fetch(
            s.full_port,
            "/healthz?verbose&exclude=log&exclude=ping,syncloop&exclude=zzz",
            ctx=pki.client_context(pki.admin),
        )
    assert r.body == (
        b"[+]ping ok\n[+]log excluded: ok\n[+]syncloop ok\n"
        b'warn: some health checks cannot be excluded: no matches for "ping,syncloop","zzz"\n'
        b"healthz check passed\n"
    )


async def test_curl_with_client_certificate(pki: Pki) -> None:
    """The line `make run` prints: curl --cacert … --cert … --key … https://127.0.0.1:PORT/pods"""
    from tests.prereq import require_binary

    curl = require_binary("curl")
    async with running(
        settings_for(pki), ServerBackends(pods=two_pods(), runtime=TinyRuntime())
    ) as s:
        assert s.full_port
        url = f"https://127.0.0.1:{s.full_port}/pods"
        ok = await asyncio.create_subprocess_exec(
            curl,
            "-sS",
            "--cacert",
            pki.ca.cert_file,
            "--cert",
            pki.admin.cert_file,
            "--key",
            pki.admin.key_file,
            "-w",
            "\n%{http_code}",
            url,
            stdout=asyncio.subprocess.PIPE,
        )
        out, _ = await ok.communicate()
        body, _, code = out.rpartition(b"\n")
        assert code == b"200" and json.loads(body)["kind"] == "PodList"
        anon = await asyncio.create_subprocess_exec(
            curl,
            "-sS",
            "--cacert",
            pki.ca.cert_file,
            "-w",
            "\n%{http_code}",
            url,
            stdout=asyncio.subprocess.PIPE,
        )
        out, _ = await anon.communicate()
        assert out == b"Unauthorized\n401"


def test_pod_list_encoder_matches_whole_encoding_and_reuses_fragments() -> None:
    from pykubelet.api import PodStatus
    from pykubelet.server.pods import PodListEncoder, encode_pod_list

    stored = two_pods().pods
    enc = PodListEncoder()
    # a lister that builds fresh views on every call, as the pod manager does
    views = [p.with_status(p.status) for p in stored]
    body = enc.encode(views)
    assert body == encode_pod_list(views)
    again = enc.encode([p.with_status(p.status) for p in stored])
    assert again is body  # nothing changed: the same bytes object
    changed = [stored[0].with_status(PodStatus(phase="Failed")), stored[1]]
    assert enc.encode(changed) == encode_pod_list(changed)
    assert enc.encode([]) == b'{"kind":"PodList","apiVersion":"v1","metadata":{},"items":null}\n'
    assert enc.encode(stored) == encode_pod_list(stored)


class CountingVersionedPods(StaticPods):
    def __init__(self) -> None:
        super().__init__(two_pods().pods)
        self.gen = 0
        self.list_calls = 0

    def generation(self) -> int:
        return self.gen

    def list_pods(self) -> list[Pod]:
        self.list_calls += 1
        return [p.with_status(p.status) for p in self.pods]


async def test_versioned_lister_is_listed_only_when_its_generation_changes(pki: Pki) -> None:
    pods = CountingVersionedPods()
    async with running(settings_for(pki), ServerBackends(pods=pods, runtime=TinyRuntime())) as s:
        assert s.full_port
        ctx = pki.client_context(pki.admin)
        first = await fetch(s.full_port, "/pods", ctx=ctx)
        for _ in range(5):
            assert (await fetch(s.full_port, "/pods", ctx=ctx)).body == first.body
        assert pods.list_calls == 1
        pods.pods = pods.pods[:1]
        pods.gen += 1
        r = await fetch(s.full_port, "/pods", ctx=ctx)
        assert [p["metadata"]["name"] for p in json.loads(r.body)["items"]] == ["api"]
        assert pods.list_calls == 2
