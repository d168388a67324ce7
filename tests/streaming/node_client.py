"""Runs tests/js/spdy_client.js (npm spdy-transport, an independent SPDY/3.1 stack)."""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path
from typing import Any

from tests.prereq import require

JS_DIR = Path(__file__).resolve().parent.parent / "js"


def require_spdy_transport() -> str:
    node = shutil.which("node")
    require(node is not None, "needs node (Debian nodejs)")
    require(
        (JS_DIR / "node_modules" / "spdy-transport").is_dir(),
        "needs npm packages in tests/js (scripts/js-deps.sh)",
    )
    assert node is not None
    return node


async def run_spdy_client(config: dict[str, Any]) -> dict[str, Any]:
    node = require_spdy_transport()
    proc = await asyncio.create_subprocess_exec(
        node,
        str(JS_DIR / "spdy_client.js"),
        json.dumps(config),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=JS_DIR,
    )
    try:
        async with asyncio.timeout(60):
            out, err = await proc.communicate()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode == 0, err.decode()
    result: dict[str, Any] = json.loads(out.decode().strip().splitlines()[-1])
    return result
