"""The registry client's sans-IO parts, table by table: references, auth challenges and token
requests, manifests and platform choice."""

from __future__ import annotations

import base64
import json

import pytest

from pykubelet.core.errors import InvalidInput
from pykubelet.registry.auth import basic_header, parse_challenge, token_request
from pykubelet.registry.manifests import (
    ImageIndex,
    ImageManifest,
    choose_platform,
    parse_manifest,
)
from pykubelet.registry.refs import parse_ref
from pykubelet.runtime.errors import ImagePullError
from pykubelet.runtime.types import RegistryAuth

D = "sha256:" + "a" * 64


@pytest.mark.parametrize(
    ("ref", "registry", "repository", "tag", "digest", "api_host"),
    [
        ("busybox", "docker.io", "library/busybox", "latest", "", "registry-1.docker.io"),
        ("me/app:1", "docker.io", "me/app", "1", "", "registry-1.docker.io"),
        ("localhost/x", "localhost", "x", "latest", "", "localhost"),
        ("127.0.0.1:5000/a/b:v2", "127.0.0.1:5000", "a/b", "v2", "", "127.0.0.1:5000"),
        (f"ghcr.io/o/r@{D}", "ghcr.io", "o/r", "", D, "ghcr.io"),
        (f"ghcr.io/o/r:1@{D}", "ghcr.io", "o/r", "1", D, "ghcr.io"),
    ],
)
def test_parse_ref(
    ref: str, registry: str, repository: str, tag: str, digest: str, api_host: str
) -> None:
    r = parse_ref(ref)
    assert (r.registry, r.repository, r.tag, r.digest) == (registry, repository, tag, digest)
    assert r.api_host == api_host
    assert r.reference == (digest or tag)


@pytest.mark.parametrize("ref", ["", "UPPER", "a//b", "x@sha256:short", "x@md5:" + "a" * 32])
def test_bad_refs(ref: str) -> None:
    with pytest.raises(InvalidInput):
        parse_ref(ref)


def test_challenges() -> None:
    c = parse_challenge(
        'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",'
        'scope="repository:library/busybox:pull"'
    )
    assert c.scheme == "bearer"
    assert c.params == {
        "realm": "https://auth.docker.io/token",
        "service": "registry.docker.io",
        "scope": "repository:library/busybox:pull",
    }
    assert parse_challenge('Basic realm="Registry Realm"').params == {"realm": "Registry Realm"}
    assert parse_challenge('bearer realm="a\\"b", error=invalid_token').params == {
        "realm": 'a"b',
        "error": "invalid_token",
    }


def test_token_requests() -> None:
    c = parse_challenge('Bearer realm="https://t.example/token",service="reg"')
    anon = token_request(c, "repository:x:pull", None)
    assert anon.url == "https://t.example/token" and anon.authorization == ""
    assert anon.query == {"scope": "repository:x:pull", "service": "reg"}
    basic = token_request(c, "repository:x:pull", RegistryAuth(username="u", password="p"))
    assert basic.authorization == "Basic " + base64.b64encode(b"u:p").decode()
    refresh = token_request(c, "repository:x:pull", RegistryAuth(identity_token="rt"))
    assert refresh.form is not None and refresh.form["grant_type"] == "refresh_token"
    assert refresh.form["refresh_token"] == "rt" and refresh.form["service"] == "reg"
    with pytest.raises(ImagePullError, match="realm"):
        token_request(parse_challenge("Bearer service=x"), "s", None)


def test_basic_header_from_auth_field() -> None:
    auth = base64.b64encode(b"user:pa:ss").decode()
    assert basic_header(RegistryAuth(auth=auth)) == f"Basic {auth}"
    assert basic_header(None) == "" and basic_header(RegistryAuth()) == ""
    with pytest.raises(ImagePullError):
        basic_header(RegistryAuth(auth="%%%"))


def _desc(arch: str, variant: str = "", os_: str = "linux") -> dict[str, object]:
    plat = {"os": os_, "architecture": arch} | ({"variant": variant} if variant else {})
    return {"mediaType": "m", "digest": f"sha256:{arch}{variant}{os_}", "size": 1, "platform": plat}


def _index(*descs: dict[str, object]) -> ImageIndex:
    parsed = parse_manifest(json.dumps({"schemaVersion": 2, "manifests": list(descs)}).encode())
    assert isinstance(parsed, ImageIndex)
    return parsed


def test_platform_choice() -> None:
    idx = _index(
        _desc("arm", "v6"), _desc("arm", "v7"), _desc("amd64"), _desc("amd64", os_="windows")
    )
    assert choose_platform(idx, ("linux", "amd64", "")).digest == "sha256:amd64linux"
    assert choose_platform(idx, ("linux", "arm", "v7")).digest == "sha256:armv7linux"
    arm64 = _index(_desc("arm64"), _desc("arm64", "v8"))
    assert choose_platform(arm64, ("linux", "arm64", "v8")).digest == "sha256:arm64v8linux"
    assert choose_platform(_index(_desc("arm64")), ("linux", "arm64", "v8")).variant == ""
    with pytest.raises(ImagePullError, match=r"linux/s390x.*linux/arm/v6"):
        choose_platform(idx, ("linux", "s390x", ""))


def test_manifest_kinds() -> None:
    layer = {
        "mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip",
        "digest": D,
        "size": 3,
    }
    doc = {"schemaVersion": 2, "config": {"digest": D, "size": 2}, "layers": [layer]}
    m = parse_manifest(
        json.dumps(doc).encode(), "application/vnd.docker.distribution.manifest.v2+json"
    )
    assert isinstance(m, ImageManifest) and m.layers[0].size_bytes == 3
    with pytest.raises(ImagePullError, match="schema 1"):
        parse_manifest(json.dumps({"schemaVersion": 1, "fsLayers": []}).encode())
    zstd = dict(layer, mediaType="application/vnd.oci.image.layer.v1.tar+zstd")
    with pytest.raises(ImagePullError, match="zstd"):
        parse_manifest(json.dumps(dict(doc, layers=[zstd])).encode())
    with pytest.raises(ImagePullError, match="not JSON"):
        parse_manifest(b"<html>")
