"""Which event loop the agent runs on: uvloop (libuv, in C) when it is installed, else asyncio's.

uvloop takes about a third off the CPU each API request costs (docs/performance.md, "Front
door"): the transport, TLS and timer work run in C. ``PYKUBELET_EVENT_LOOP`` overrides the
choice: ``asyncio`` forces asyncio's own loop (debugging, comparisons), ``uvloop`` requires
uvloop (start-up fails if it is missing), ``auto`` or unset picks uvloop when importable.
"""

from __future__ import annotations

import asyncio
import importlib
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from pykubelet.core.errors import InvalidInput

__all__ = ["ENV_VAR", "LoopChoice", "choose_loop", "loop_factory"]

ENV_VAR = "PYKUBELET_EVENT_LOOP"
_CHOICES = ("auto", "asyncio", "uvloop")


@dataclass(frozen=True, slots=True)
class LoopChoice:
    name: str  # "uvloop" or "asyncio"
    factory: Callable[[], asyncio.AbstractEventLoop] | None  # None: asyncio's default
    why: str  # one line for the start-up log and doctor


def choose_loop(env: Mapping[str, str] | None = None) -> LoopChoice:
    """The loop ``PYKUBELET_EVENT_LOOP`` asks for; ``InvalidInput`` for a value we do not know
    or ``uvloop`` demanded but not installed (a setting either works or says so)."""
    wanted = (os.environ if env is None else env).get(ENV_VAR, "").strip().lower() or "auto"
    if wanted not in _CHOICES:
        raise InvalidInput(
            f"{ENV_VAR}={wanted!r}: expected one of {', '.join(_CHOICES)}", field=ENV_VAR
        )
    if wanted == "asyncio":
        return LoopChoice("asyncio", None, f"asyncio's event loop ({ENV_VAR}=asyncio)")
    try:
        uvloop = importlib.import_module("uvloop")
    except ImportError as e:
        if wanted == "uvloop":
            raise InvalidInput(
                f"{ENV_VAR}=uvloop but uvloop cannot be imported ({e}): pip install uvloop",
                field=ENV_VAR,
            ) from e
        return LoopChoice("asyncio", None, "asyncio's event loop (uvloop is not installed)")
    version = getattr(uvloop, "__version__", "?")
    return LoopChoice("uvloop", uvloop.new_event_loop, f"uvloop {version}")


def loop_factory(env: Mapping[str, str] | None = None) -> Callable[[], asyncio.AbstractEventLoop]:
    """A factory for ``asyncio.Runner`` (asyncio's own loop when uvloop is not chosen)."""
    return choose_loop(env).factory or asyncio.new_event_loop
