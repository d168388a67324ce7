"""Docker config credentials matched as the Go kubelet's keyring (credentialprovider) matches."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from pykubelet.core.errors import InvalidInput
from pykubelet.pods.credentials import Keyring


def _ring(auths: dict[str, str], legacy: bool = False) -> Keyring:
    entries = {k: {"username": u, "password": "pw"} for k, u in auths.items()}
    doc = entries if legacy else {"auths": entries}
    return Keyring.from_docker_config(json.dumps(doc), "test")


def _users(ring: Keyring, image: str) -> list[str]:
    return [a.username for a in ring.lookup(image)]


RING = {
    "https://index.docker.io/v1/": "hub",
    "registry.example.com": "host",
    "registry.example.com/team": "team",
    "registry.example.com/team/app": "app",
    "*.wild.example.com": "glob",
    "127.0.0.1:5000": "port",
    "http://plain.example.com/v2/": "v2path",
}


@pytest.mark.parametrize(
    ("image", "users"),
    [
        ("busybox", ["hub"]),  # docker hub falls back to index.docker.io
        ("docker.io/library/busybox:1.36", ["hub"]),
        ("registry.example.com/other/x:1", ["host"]),
        ("registry.example.com/team/x:1", ["team", "host"]),  # most specific first
        ("registry.example.com/team/app@sha256:" + "a" * 64, ["app", "team", "host"]),
        ("a.wild.example.com/x", ["glob"]),
        ("a.b.wild.example.com/x", []),  # a glob matches one part only
        ("wild.example.com/x", []),
        ("127.0.0.1:5000/x:1", ["port"]),
        ("127.0.0.1:5001/x:1", []),  # ports must be equal
        ("127.0.0.1/x:1", []),
        ("plain.example.com/x", ["v2path"]),  # /v1/ and /v2/ mean the host
        ("example.com/x", []),
    ],
)
def test_lookup(image: str, users: list[str]) -> None:
    assert _users(_ring(RING), image) == users
    assert _users(_ring(RING, legacy=True), image) == users  # .dockercfg has no "auths"


def test_union_puts_pod_secrets_first() -> None:
    pod = _ring({"registry.example.com": "pod"})
    node = _ring({"registry.example.com": "node"})
    assert _users(pod + node, "registry.example.com/x") == ["pod", "node"]


def test_auth_field_is_decoded() -> None:
    auth = base64.b64encode(b"user:p:w").decode()
    ring = Keyring.from_docker_config(json.dumps({"auths": {"r.io": {"auth": auth}}}), "f")
    (cred,) = ring.lookup("r.io/x")
    assert (cred.username, cred.password, cred.server) == ("user", "p:w", "r.io")


@pytest.mark.parametrize(
    ("doc", "field"),
    [
        ("not json", "not JSON"),
        ('{"auths": {"r.io": {"auth": "***"}}}', "auths['r.io'].auth"),
        ('{"auths": {"r.io": {"auth": "' + base64.b64encode(b"nocolon").decode() + '"}}}', "auth"),
        ('{"auths": {"r.io": {"username": 5}}}', "auths['r.io'].username"),
        ('{"auths": {"r.io": "x"}}', "auths['r.io']"),
        ('{"auths": []}', "auths"),
    ],
)
def test_bad_files_name_the_field(doc: str, field: str) -> None:
    with pytest.raises(InvalidInput, match=r"^cfg\.json: .*") as e:
        Keyring.from_docker_config(doc, "cfg.json")
    assert field in str(e.value)


def test_pull_secret_objects() -> None:
    cfg = json.dumps({"auths": {"r.io": {"username": "u", "password": "p"}}}).encode()
    data = {".dockerconfigjson": base64.b64encode(cfg).decode()}
    ring = Keyring.from_secret("kubernetes.io/dockerconfigjson", data, "secret ns/s")
    assert [a.username for a in ring.lookup("r.io/x")] == ["u"]
    legacy = {".dockercfg": base64.b64encode(b'{"r.io": {"username": "old"}}').decode()}
    ring = Keyring.from_secret("kubernetes.io/dockercfg", legacy, "secret ns/s")
    assert [a.username for a in ring.lookup("r.io/x")] == ["old"]
    assert not Keyring.from_secret("Opaque", {"x": "eA=="}, "secret ns/o")
    with pytest.raises(InvalidInput, match=r"secret ns/s: data\['.dockerconfigjson'\] is missing"):
        Keyring.from_secret("kubernetes.io/dockerconfigjson", {}, "secret ns/s")
    with pytest.raises(InvalidInput, match="not base64"):
        Keyring.from_secret("kubernetes.io/dockerconfigjson", {".dockerconfigjson": "%"}, "s")


def test_node_files_search_order_and_reload(tmp_path: Path) -> None:
    from pykubelet.pods.credentials import DockerConfigFiles

    first, second = tmp_path / "config.json", tmp_path / "home" / ".docker" / "config.json"
    files = DockerConfigFiles(search=(str(first), str(second)))
    assert not files.keyring()  # none exists: anonymous
    second.parent.mkdir(parents=True)
    second.write_text(json.dumps({"auths": {"r.io": {"username": "home"}}}))
    assert _users(files.keyring(), "r.io/x") == ["home"]
    first.write_text(json.dumps({"auths": {"r.io": {"username": "root-dir"}}}))
    assert _users(files.keyring(), "r.io/x") == ["root-dir"]  # the first that exists wins
    first.write_text(json.dumps({"auths": {"r.io": {"username": "changed-longer"}}}))
    assert _users(files.keyring(), "r.io/x") == ["changed-longer"]  # re-read when it changes
    first.write_text("{broken")
    assert _users(files.keyring(), "r.io/x") == ["changed-longer"]  # a bad edit keeps the last good


def test_a_named_file_must_exist_and_parse(tmp_path: Path) -> None:
    from pykubelet.pods.credentials import DockerConfigFiles

    with pytest.raises(InvalidInput, match=r"missing\.json"):
        DockerConfigFiles(str(tmp_path / "missing.json")).check()
    bad = tmp_path / "bad.json"
    bad.write_text("[]")
    with pytest.raises(InvalidInput, match=r"bad\.json"):
        DockerConfigFiles(str(bad)).check()
