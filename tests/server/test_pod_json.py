"""The pieces of /pods' Go wire form (the whole is compared with upstream in test_endpoints)."""

from __future__ import annotations

import pytest

from pykubelet.api import canonical_quantity, go_json
from pykubelet.api.key_order import in_go_order
from pykubelet.pods.static_pod import static_pod_from_document


def test_go_json_escapes_what_encoding_json_escapes() -> None:
    assert go_json({"c": 'a<b>c&d\u2028e\u2029f é "q" \\'}) == (
        b'{"c":"a\\u003cb\\u003ec\\u0026d\\u2028e\\u2029f \xc3\xa9 \\"q\\" \\\\"}'
    )
    assert go_json(None) == b"null"


def test_struct_fields_in_declaration_order_maps_sorted_unknown_keys_last() -> None:
    spec = {
        "zzNewerThan120": 1,
        "nodeSelector": {"b": "2", "a": "1"},
        "containers": [
            {
                "resources": {"requests": {"memory": "1", "cpu": "1"}},
                "restartPolicy": "Always",
                "image": "i",
                "name": "c",
            }
        ],
        "restartPolicy": "Never",
    }
    out = in_go_order(spec, "PodSpec")
    assert list(out) == ["containers", "restartPolicy", "nodeSelector", "zzNewerThan120"]
    assert list(out["nodeSelector"]) == ["a", "b"]
    assert list(out["containers"][0]) == ["name", "image", "resources", "restartPolicy"]
    assert list(out["containers"][0]["resources"]["requests"]) == ["cpu", "memory"]
    assert list(spec) == ["zzNewerThan120", "nodeSelector", "containers", "restartPolicy"]


def test_static_pod_defaults_reach_hooks_and_downward_volumes() -> None:
    doc = {
        "metadata": {"name": "p"},
        "spec": {
            "containers": [
                {
                    "name": "c",
                    "image": "busybox:1",
                    "lifecycle": {"preStop": {"httpGet": {"port": 80}}},
                    "readinessProbe": {"exec": {"command": ["true"]}, "periodSeconds": 0},
                }
            ],
            "volumes": [
                {
                    "name": "d",
                    "downwardAPI": {
                        "items": [{"path": "n", "fieldRef": {"fieldPath": "metadata.name"}}]
                    },
                }
            ],
        },
    }
    pod = static_pod_from_document(doc, path="/m/p.yaml", node_name="n", seen_at=0.0)
    c = pod.raw["spec"]["containers"][0]
    assert c["lifecycle"]["preStop"]["httpGet"] == {"path": "/", "port": 80, "scheme": "HTTP"}
    assert c["readinessProbe"] == {
        "exec": {"command": ["true"]},
        "timeoutSeconds": 1,
        "periodSeconds": 10,
        "successThreshold": 1,
        "failureThreshold": 3,
    }
    item = pod.raw["spec"]["volumes"][0]["downwardAPI"]["items"][0]
    assert item["fieldRef"] == {"apiVersion": "v1", "fieldPath": "metadata.name"}
    assert list(pod.raw["spec"])[:2] == ["volumes", "containers"]


@pytest.mark.parametrize(
    ("written", "canonical"),
    [  # what the upstream kubelet v1.20.2 served back (tests/fixtures/upstream, volumes.yaml)
        ("0.5", "500m"),
        ("1500m", "1500m"),
        ("2000m", "2"),
        ("1.5Gi", "1536Mi"),
        ("2048Ki", "2Mi"),
        ("1.5Ki", "1536"),
        ("0.5Ki", "512"),
        ("1e3", "1e3"),
        ("1.5e3", "1500"),
        ("1000k", "1M"),
        (12345678901, "12345678901"),
        ("0.0000000001", "1n"),
        ("1E", "1E"),
        ("0Mi", "0"),
        ("100e-3", "100e-3"),
        ("3000000M", "3T"),
        (1025, "1025"),
        ("10e1", "100"),
        (1, "1"),
    ],
)
def test_quantities_are_written_back_canonically(written: object, canonical: str) -> None:
    assert canonical_quantity(written) == canonical
