"""Bearer-token auth: a real docker-registry with ``auth.token`` and a token server of the test's
own (the distribution token spec); pulls with basic credentials and with an identity (refresh)
token, and anonymous pulls refused."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from pykubelet.runtime.errors import ImagePullError
from pykubelet.runtime.process.runtime import ProcessRuntime
from pykubelet.runtime.types import RegistryAuth
from pykubelet.security.certs import create_ca
from tests.images.registry import Registry, start_registry
from tests.images.token_server import TokenServer


@pytest.fixture
async def token_registry(
    tmp_path: Path, test_layout: Path
) -> AsyncIterator[tuple[Registry, TokenServer]]:
    signer = create_ca(str(tmp_path / "token-ca"), common_name="token-signer")
    server = TokenServer(cert_file=signer.cert_file, key_file=signer.key_file)
    await server.start()
    reg = start_registry(tmp_path / "registry", token_realm=server.url, token_ca=signer.cert_file)
    reg.user, reg.password = server.user, server.password
    try:
        await asyncio.to_thread(reg.push_oci, test_layout, "busybox", "tok/busybox:1.0")
        server.requests.clear()
        yield reg, server
    finally:
        reg.stop()
        await server.stop()


async def test_bearer_token_with_basic_credentials_and_refresh_token(
    tmp_path: Path, token_registry: tuple[Registry, TokenServer]
) -> None:
    reg, server = token_registry
    ref = f"{reg.host}/tok/busybox:1.0"
    rt = ProcessRuntime(tmp_path / "root")
    with pytest.raises(ImagePullError, match="unauthorized"):
        await rt.pull_image(ref)
    with pytest.raises(ImagePullError, match="unauthorized"):
        await rt.pull_image(ref, RegistryAuth(username=server.user, password="nope"))
    assert server.requests == ["anonymous", "bad"]
    image_id = await rt.pull_image(
        ref, RegistryAuth(username=server.user, password=server.password)
    )
    assert (await rt.image_status(ref)) is not None
    # one token serves the whole pull (manifest, config, layer)
    assert server.requests[2:] == ["basic"]
    await rt.remove_image(image_id)
    assert await rt.pull_image(ref, RegistryAuth(identity_token=server.refresh_token)) == image_id
    assert server.requests[3:] == ["refresh"]
