from __future__ import annotations

from pathlib import Path

import pytest

from tests.server.harness import Pki, make_pki
from tests.server.upstream_node import upstream_node  # noqa: F401  (fixture)


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    return tmp_path
