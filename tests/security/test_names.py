"""Names with a trailing newline (issue #14, hole 14): ``$`` matches before a final ``\\n``, so
``re.match(r"^...$")`` let ``web\\n`` through. Every name check uses ``fullmatch`` now; each bad
value is refused with an error naming its field. The real manifest parser, no doubles."""

from __future__ import annotations

from typing import Any

import pytest

from pykubelet.api import Pod
from pykubelet.api.quantity import parse_quantity
from pykubelet.core.errors import InvalidInput, PykubeletError
from pykubelet.runtime.process.refs import normalize_ref


def manifest(**over: Any) -> dict[str, Any]:
    container: dict[str, Any] = {"name": "app", "image": "busybox"}
    container.update(over.pop("container", {}))
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": over.pop("name", "web"), "namespace": over.pop("ns", "default")},
        "spec": {"containers": [container]},
    }


def test_the_clean_manifest_parses() -> None:
    assert Pod.from_dict(manifest()).meta.name == "web"


@pytest.mark.parametrize(
    ("kw", "field"),
    [
        ({"name": "web\n"}, "metadata.name"),
        ({"ns": "default\n"}, "metadata.namespace"),
        ({"ns": "a" * 64}, "metadata.namespace"),
        ({"container": {"name": "app\n"}}, "spec.containers[0].name"),
        ({"container": {"ports": [{"name": "http\n", "containerPort": 80}]}}, "ports"),
    ],
)
def test_trailing_newline_is_refused(kw: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidInput) as e:
        Pod.from_dict(manifest(**kw))
    assert field in str(e.value.field) or field in str(e.value), (e.value.field, str(e.value))


def test_quantity_and_image_reference_need_a_full_match() -> None:
    with pytest.raises(InvalidInput):
        parse_quantity("1\n", field="cpu")
    with pytest.raises(InvalidInput):
        parse_quantity("1e3\n", field="cpu")
    assert parse_quantity("1e3", field="cpu").amount == parse_quantity("1k", field="cpu").amount
    with pytest.raises(PykubeletError):
        normalize_ref("busybox\n")
