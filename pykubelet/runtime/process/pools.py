"""Thread pools of the process runtime, apart from the event loop's default executor.

Starting a hundred pods at once queues hundreds of short blocking jobs (cgroup directories,
records, overlay directories) and as many helper launches (a fork/exec and a wait for the
helper's "OK" line). In the default executor (CPU count + 4 threads) they queue behind one
another and behind everyone else's file work; here file work has threads of its own, and
launches have their own pool so they never wait behind it. Both are process-wide and start
their threads on demand.
"""

from __future__ import annotations

import asyncio
import functools
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import ParamSpec, TypeVar

__all__ = ["run_io", "run_launch"]

P = ParamSpec("P")
T = TypeVar("T")

_IO_THREADS = 16
_LAUNCH_THREADS = 8
_lock = threading.Lock()
_pools: dict[str, ThreadPoolExecutor] = {}


def _pool(name: str, size: int) -> ThreadPoolExecutor:
    with _lock:
        pool = _pools.get(name)
        if pool is None:
            pool = _pools[name] = ThreadPoolExecutor(size, thread_name_prefix=f"pkruntime-{name}")
        return pool


async def run_io(fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
    """Run blocking file work of the runtime in its I/O pool."""
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(
        _pool("io", _IO_THREADS), functools.partial(fn, *args, **kwargs)
    )


async def run_launch(fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
    """Run a helper launch (fork, exec, wait for its report) in the launch pool."""
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(
        _pool("launch", _LAUNCH_THREADS), functools.partial(fn, *args, **kwargs)
    )
