"""PYKUBELET_EVENT_LOOP: asyncio's loop by default, uvloop on request, bad values refused."""

from __future__ import annotations

import asyncio
import importlib.util

import pytest

from pykubelet.core.errors import InvalidInput
from pykubelet.server.eventloop import ENV_VAR, choose_loop
from tests.prereq import require


def test_default_is_asyncio() -> None:
    choice = choose_loop({})
    assert choice.name == "asyncio" and choice.factory is None
    with asyncio.Runner(loop_factory=choice.factory) as runner:
        loop = runner.get_loop()
        assert type(loop).__module__.startswith("asyncio")


def test_uvloop_on_request_runs_the_loop() -> None:
    require(importlib.util.find_spec("uvloop") is not None, "uvloop (the test extra) not installed")
    choice = choose_loop({ENV_VAR: " UVLOOP "})
    assert choice.name == "uvloop" and choice.factory is not None
    with asyncio.Runner(loop_factory=choice.factory) as runner:
        assert type(runner.get_loop()).__module__.startswith("uvloop")
        assert runner.run(asyncio.sleep(0, "ran")) == "ran"


def test_unknown_value_names_the_variable() -> None:
    with pytest.raises(InvalidInput, match=f"^{ENV_VAR}: 'tokio' is not one of asyncio, uvloop$"):
        choose_loop({ENV_VAR: "tokio"})
