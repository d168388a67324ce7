"""Pull one image from its registry into the ``ImageStore``.

Resolve the reference to a manifest (through an index: this host's platform), fetch the config
(its digest is the image id), and — unless that image is stored already, which makes a re-pull
cost one manifest request — fetch the layers in parallel to a scratch directory, verify them,
and unpack them in order. The repository digest recorded is that of the top-level manifest or
index, as containerd records it, so ``name@sha256:...`` finds the image again.
"""

from __future__ import annotations

import asyncio
import hashlib
import shutil
import tarfile
import uuid
import zlib
from pathlib import Path

from pykubelet.core.errors import InvalidInput
from pykubelet.registry import (
    ImageIndex,
    RegistryClient,
    choose_platform,
    parse_manifest,
    parse_ref,
)
from pykubelet.runtime.errors import ImagePullError
from pykubelet.runtime.process.images import ImageStore
from pykubelet.runtime.process.layers import apply_layer_file
from pykubelet.runtime.process.pools import run_io
from pykubelet.runtime.types import ImageInfo, RegistryAuth

__all__ = ["pull_from_registry"]

PARALLEL_LAYERS = 3


async def pull_from_registry(
    store: ImageStore,
    client: RegistryClient,
    ref: str,
    auth: RegistryAuth | None,
    scratch: Path,
) -> ImageInfo:
    r = parse_ref(ref)
    body, ctype = await client.manifest(r, r.reference, auth)
    top_digest = "sha256:" + hashlib.sha256(body).hexdigest()
    if r.digest and top_digest != r.digest:
        raise ImagePullError(f"{ref}: the registry sent a manifest with digest {top_digest}")
    manifest = parse_manifest(body, ctype)
    if isinstance(manifest, ImageIndex):
        desc = choose_platform(manifest)
        body, ctype = await client.manifest(r, desc.digest, auth)
        got = "sha256:" + hashlib.sha256(body).hexdigest()
        if got != desc.digest:
            raise ImagePullError(f"{ref}: manifest {desc.digest} arrived with digest {got}")
        manifest = parse_manifest(body, ctype)
        if isinstance(manifest, ImageIndex):
            raise ImagePullError(f"{ref}: an index inside an index is not supported")
    config = await client.blob_bytes(
        r, manifest.config.digest, auth, size_bytes=manifest.config.size_bytes
    )
    refs = [f"{r.name}:{r.tag}"] if r.tag else []
    refs.append(f"{r.name}@{top_digest}")
    repo_digest = f"{r.name}@{top_digest}"
    if store.has_config(manifest.config.digest):
        return await run_io(store.store, refs, config, _nothing, repo_digest=repo_digest)

    work = scratch / f"pull-{uuid.uuid4().hex}"
    await run_io(work.mkdir, parents=True)
    try:
        paths = [work / f"{i}.layer" for i in range(len(manifest.layers))]
        gate = asyncio.Semaphore(PARALLEL_LAYERS)

        async def fetch(i: int) -> None:
            layer = manifest.layers[i]
            async with gate:
                await client.blob_to_file(
                    r, layer.digest, auth, paths[i], size_bytes=layer.size_bytes
                )

        try:
            async with asyncio.TaskGroup() as tg:
                for i in range(len(paths)):
                    tg.create_task(fetch(i))
        except ExceptionGroup as group:  # the first failed layer says why
            raise group.exceptions[0] from None

        def unpack(root: Path) -> None:
            for i, p in enumerate(paths):
                try:
                    apply_layer_file(p, root)
                except (InvalidInput, tarfile.TarError, EOFError, zlib.error) as e:
                    raise ImagePullError(f"{ref}: layer {manifest.layers[i].digest}: {e}") from e

        return await run_io(store.store, refs, config, unpack, repo_digest=repo_digest)
    finally:
        await run_io(shutil.rmtree, work, True)


def _nothing(root: Path) -> None:
    """The image was stored when the pull began, so no layer was fetched; called only if it was
    removed (image GC, ``images rm``) in the meantime: the next try fetches it whole."""
    raise ImagePullError("the image was removed while it was being pulled; pull again")
