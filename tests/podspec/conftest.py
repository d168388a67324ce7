"""The end-to-end node fixtures are shared with tests/e2e (a real ``pykubelet run``).

``node`` is on the process runtime unless a test asks for more with
``@pytest.mark.parametrize("node", RUNTIMES, indirect=True)``: several tests here check what only
the embedded runtime does (its built-in network, its host-port handling).
"""

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.conftest import busybox_tar, image_cache, make_node
from tests.e2e.node import Node

__all__ = ["busybox_tar", "image_cache", "node"]


@pytest.fixture
def node(request: pytest.FixtureRequest, tmp_path: Path, busybox_tar: Path) -> Iterator[Node]:
    yield from make_node(getattr(request, "param", "process"), request, tmp_path, busybox_tar)
