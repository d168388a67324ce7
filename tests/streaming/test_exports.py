"""The packages' public names: every listed name exists, and nothing public is left out."""

from __future__ import annotations

import importlib

import pytest

import pykubelet.server.streams as streams
import pykubelet.streaming as streaming


@pytest.mark.parametrize("package", [streaming, streams])
def test_all_names_exist(package: object) -> None:
    names = package.__all__  # type: ignore[attr-defined]
    assert len(set(names)) == len(names)
    assert [n for n in names if not hasattr(package, n)] == []


def test_the_sans_io_package_exports_every_core_name() -> None:
    """What the cores' modules publish is reachable from ``pykubelet.streaming`` itself."""
    missing = []
    for module in ("errors", "portforward", "remotecommand", "spdy", "spdy_events", "wschannel"):
        mod = importlib.import_module(f"pykubelet.streaming.{module}")
        missing += [f"{module}.{n}" for n in mod.__all__ if n not in streaming.__all__]
    assert missing == []
