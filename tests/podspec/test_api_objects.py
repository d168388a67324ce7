"""ConfigMap and Secret references resolved with upstream's rules (pure functions)."""

from __future__ import annotations

import pytest

from pykubelet.api import Pod
from pykubelet.pods.spec_errors import ContainerConfigError, VolumeSetupError
from pykubelet.podspec.api_objects import (
    CONFIG_MAP,
    SECRET,
    PodObjects,
    env_from_values,
    key_value,
    references,
    volume_files,
)

OBJECTS = PodObjects(
    {
        (CONFIG_MAP, "cfg"): {"a": b"1", "b": b"2"},
        (SECRET, "sec"): {"token": b"s3cret"},
        (CONFIG_MAP, "gone"): None,
    }
)


def test_references_cover_env_env_from_volumes_and_projections() -> None:
    pod = Pod.from_dict(
        {
            "metadata": {"name": "p"},
            "spec": {
                "containers": [
                    {
                        "name": "c",
                        "image": "i",
                        "env": [
                            {
                                "name": "A",
                                "valueFrom": {"configMapKeyRef": {"name": "e1", "key": "k"}},
                            },
                            {
                                "name": "B",
                                "valueFrom": {"secretKeyRef": {"name": "e2", "key": "k"}},
                            },
                        ],
                        "envFrom": [
                            {"configMapRef": {"name": "f1"}},
                            {"secretRef": {"name": "f2"}},
                        ],
                    }
                ],
                "volumes": [
                    {"name": "v1", "configMap": {"name": "v1"}},
                    {"name": "v2", "secret": {"secretName": "v2"}},
                    {
                        "name": "v3",
                        "projected": {
                            "sources": [{"configMap": {"name": "p1"}}, {"secret": {"name": "p2"}}]
                        },
                    },
                ],
            },
        }
    )
    assert references(pod) == {
        (CONFIG_MAP, "e1"), (SECRET, "e2"), (CONFIG_MAP, "f1"), (SECRET, "f2"),
        (CONFIG_MAP, "v1"), (SECRET, "v2"), (CONFIG_MAP, "p1"), (SECRET, "p2"),
    }  # fmt: skip


def test_key_refs_with_upstreams_messages_and_optional() -> None:
    assert key_value(OBJECTS, {"configMapKeyRef": {"name": "cfg", "key": "a"}}, "env[0]") == "1"
    assert key_value(OBJECTS, {"secretKeyRef": {"name": "sec", "key": "token"}}, "x") == "s3cret"
    with pytest.raises(ContainerConfigError, match='configmap "gone" not found'):
        key_value(OBJECTS, {"configMapKeyRef": {"name": "gone", "key": "a"}}, "x")
    with pytest.raises(ContainerConfigError, match="couldn't find key z in ConfigMap cfg"):
        key_value(OBJECTS, {"configMapKeyRef": {"name": "cfg", "key": "z"}}, "x")
    ref = {"configMapKeyRef": {"name": "gone", "key": "a", "optional": True}}
    assert key_value(OBJECTS, ref, "x") is None


def test_env_from_with_prefix_and_optional() -> None:
    got = env_from_values(
        OBJECTS,
        [{"configMapRef": {"name": "cfg"}, "prefix": "P_"}, {"secretRef": {"name": "sec"}},
         {"configMapRef": {"name": "gone", "optional": True}}],
        "envFrom",
    )  # fmt: skip
    assert got == [("P_a", "1"), ("P_b", "2"), ("token", "s3cret")]
    with pytest.raises(ContainerConfigError, match='secret "nope" not found'):
        env_from_values(OBJECTS, [{"secretRef": {"name": "nope"}}], "envFrom")


def test_volume_files_all_keys_or_items() -> None:
    assert [f.path for f in volume_files(OBJECTS, CONFIG_MAP, {"name": "cfg"}, "v")] == ["a", "b"]
    (f,) = volume_files(
        OBJECTS,
        SECRET,
        {"secretName": "sec", "items": [{"key": "token", "path": "t/x", "mode": 0o400}]},
        "v",
    )
    assert (f.path, f.content, f.mode) == ("t/x", b"s3cret", 0o400)
    with pytest.raises(VolumeSetupError, match='configmap "gone" not found'):
        volume_files(OBJECTS, CONFIG_MAP, {"name": "gone"}, "v")
    assert volume_files(OBJECTS, CONFIG_MAP, {"name": "gone", "optional": True}, "v") == ()
    with pytest.raises(VolumeSetupError, match="non-existent config key: q"):
        volume_files(
            OBJECTS, CONFIG_MAP, {"name": "cfg", "items": [{"key": "q", "path": "q"}]}, "v"
        )


def test_token_sources_are_keyed_by_audience_and_expiration() -> None:
    from pykubelet.podspec.api_objects import TOKEN, token_file, token_requests

    pod = Pod.from_dict(
        {
            "metadata": {"name": "p"},
            "spec": {
                "containers": [{"name": "c", "image": "i"}],
                "volumes": [
                    {"name": "t", "projected": {"sources": [
                        {"serviceAccountToken": {"path": "token"}},
                        {"serviceAccountToken": {"path": "vault", "audience": "vault",
                                                 "expirationSeconds": 600}},
                    ]}},
                ],
            },
        }
    )  # fmt: skip
    assert token_requests(pod) == {"|3600", "vault|600"}
    objects = PodObjects({(TOKEN, "vault|600"): {"token": b"jwt"}})
    f = token_file(objects, {"path": "vault", "audience": "vault", "expirationSeconds": 600}, "t")
    assert (f.path, f.content) == ("vault", b"jwt")
    with pytest.raises(VolumeSetupError, match="no service account token"):
        token_file(objects, {"path": "token"}, "t")
