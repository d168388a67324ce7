"""Failures between the node and a registry: nothing listening, a server that stops sending
mid-layer (a server of the test's own on 127.0.0.1: no real registry stalls on request), and a
registry that is not one. Each is an ``ImagePullError``, and the store is left empty."""

from __future__ import annotations

import asyncio
import hashlib
import json
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from pykubelet.registry import RegistryClient, parse_ref
from pykubelet.runtime.errors import ImagePullError
from pykubelet.runtime.process.runtime import ProcessRuntime

LAYER = b"x" * 100_000
LAYER_DIGEST = "sha256:" + hashlib.sha256(LAYER).hexdigest()


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_nothing_listening(tmp_path: Path) -> None:
    rt = ProcessRuntime(tmp_path / "root")
    with pytest.raises(ImagePullError):
        await rt.pull_image(f"127.0.0.1:{_closed_port()}/x/y:1")
    assert await rt.list_images() == []


@pytest.fixture
async def stalling_server() -> AsyncIterator[str]:
    config = json.dumps({"architecture": "amd64", "os": "linux", "config": {}}).encode()
    manifest: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"digest": "sha256:" + hashlib.sha256(config).hexdigest(), "size": len(config)},
        "layers": [
            {
                "mediaType": "application/vnd.oci.image.layer.v1.tar",
                "digest": LAYER_DIGEST,
                "size": len(LAYER),
            }
        ],
    }
    release = asyncio.Event()

    async def manifests(request: web.Request) -> web.Response:
        if request.match_info["ref"] == "not-json":
            return web.Response(body=b"<html>hello</html>", content_type="text/html")
        return web.Response(body=json.dumps(manifest).encode(), content_type=manifest["mediaType"])

    async def blobs(request: web.Request) -> web.StreamResponse:
        if request.match_info["digest"] != LAYER_DIGEST:
            return web.Response(body=config)
        resp = web.StreamResponse(headers={"Content-Length": str(len(LAYER))})
        await resp.prepare(request)
        await resp.write(LAYER[:1000])
        await release.wait()  # never sends the rest while the client waits
        return resp

    app = web.Application()
    app.router.add_get("/v2/{repo:.+}/manifests/{ref}", manifests)
    app.router.add_get("/v2/{repo:.+}/blobs/{digest}", blobs)
    runner = web.AppRunner(app, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"127.0.0.1:{runner.addresses[0][1]}"
    finally:
        release.set()
        await runner.cleanup()


async def test_a_stalled_layer_fails_the_pull(stalling_server: str, tmp_path: Path) -> None:
    ref = parse_ref(f"{stalling_server}/stall/img:1")
    async with RegistryClient(stall_timeout_s=0.3) as client:
        with pytest.raises(ImagePullError, match="reading blob"):
            await client.blob_to_file(ref, LAYER_DIGEST, None, tmp_path / "layer")
    assert not (tmp_path / "layer").exists() or (tmp_path / "layer").stat().st_size < len(LAYER)


async def test_not_a_registry(stalling_server: str, tmp_path: Path) -> None:
    rt = ProcessRuntime(tmp_path / "root")
    with pytest.raises(ImagePullError, match="not JSON"):
        await rt.pull_image(f"{stalling_server}/stall/img:not-json")
    assert await rt.list_images() == []
