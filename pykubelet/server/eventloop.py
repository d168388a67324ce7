"""Which event loop the agent runs on: asyncio's own unless ``PYKUBELET_EVENT_LOOP=uvloop``.

uvloop (libuv, in C; ``pip install 'pykubelet[uvloop]'``) was measured and is not the default
(docs/performance.md, "Front door" and "The lean path"): it saves ~20 % of the CPU of a
``/healthz`` answer on the lean path, where the transport is a large share, and little on
requests through aiohttp; and it starts subprocesses about 5x slower (libuv forks the whole
agent where CPython uses vfork), which CNI plugin calls, execs into containers without
namespaces and ``ctr`` calls pay (execs and probes into containers use ``posix_spawn``,
container starts the zygote: neither goes through the loop's subprocess support).
``PYKUBELET_EVENT_LOOP``: ``asyncio`` (or unset) for asyncio's loop, ``uvloop`` to require
uvloop (start-up fails if it is missing).
"""

from __future__ import annotations

import asyncio
import importlib
import importlib.util
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from pykubelet.core.errors import InvalidInput

__all__ = ["ENV_VAR", "LoopChoice", "choose_loop"]

ENV_VAR = "PYKUBELET_EVENT_LOOP"
_CHOICES = ("asyncio", "uvloop")


@dataclass(frozen=True, slots=True)
class LoopChoice:
    name: str  # "uvloop" or "asyncio"
    factory: Callable[[], asyncio.AbstractEventLoop] | None  # None: asyncio's default
    why: str  # one line for the start-up log


def choose_loop(env: Mapping[str, str] | None = None) -> LoopChoice:
    """The loop ``PYKUBELET_EVENT_LOOP`` asks for; ``InvalidInput`` for a value we do not know
    or ``uvloop`` asked for but not installed (a setting either works or says so)."""
    wanted = (os.environ if env is None else env).get(ENV_VAR, "").strip().lower() or "asyncio"
    if wanted not in _CHOICES:
        raise InvalidInput(f"{wanted!r} is not one of {', '.join(_CHOICES)}", field=ENV_VAR)
    if wanted == "asyncio":
        installed = importlib.util.find_spec("uvloop") is not None
        note = f" (uvloop is installed; {ENV_VAR}=uvloop selects it)" if installed else ""
        return LoopChoice("asyncio", None, f"asyncio's event loop{note}")
    try:
        uvloop = importlib.import_module("uvloop")
    except ImportError as e:
        raise InvalidInput(
            f"uvloop asked for but it cannot be imported ({e}): pip install 'pykubelet[uvloop]'",
            field=ENV_VAR,
        ) from e
    version = getattr(uvloop, "__version__", "?")
    return LoopChoice("uvloop", uvloop.new_event_loop, f"uvloop {version} ({ENV_VAR}=uvloop)")
