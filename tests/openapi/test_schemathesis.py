"""Schemathesis (property-based, from the description alone) against a running agent: ~500
generated requests to the non-streaming operations, every response checked for status, content
type, headers and schema conformance. A fixed seed keeps a failure reproducible."""

from __future__ import annotations

import asyncio
import json
import re
import sys
from pathlib import Path

import pytest

from tests.openapi.agent import DOC, FULL, running_agent
from tests.prereq import require

pytestmark = pytest.mark.timeout(400)

SCHEMATHESIS = Path(sys.executable).parent / "schemathesis"

# What is left out, and why:
EXCLUDED_OPERATIONS = (
    "containerLogs",  # follow=true on a running container streams until the client leaves
    "debugFlagsVGet",  # it exists to document that anything but PUT is 406
    "debugFlagsV",  # PUT changes the agent's log level
)
EXCLUDED_CHECKS = (
    "ignored_auth",  # the client certificate authenticates: a bad Authorization header is moot
    "unsupported_method",  # go-restful's 405 has no Allow header, upstream's neither
)


async def test_schemathesis_finds_nothing(tmp_path: Path) -> None:
    require(SCHEMATHESIS.exists(), "needs schemathesis (the test extra)")
    spec = tmp_path / "kubelet-api.json"
    spec.write_text(json.dumps(DOC))
    async with running_agent(tmp_path / "agent") as t:
        args = [
            "run", str(spec),
            "--url", f"https://127.0.0.1:{t.ports[FULL]}",
            "--tls-verify", t.pki.ca.cert_file,
            "--request-cert", t.pki.admin.cert_file,
            "--request-cert-key", t.pki.admin.key_file,
            "--exclude-tag", "streaming",  # upgrades: walked by test_walk.py
            *(a for op in EXCLUDED_OPERATIONS for a in ("--exclude-operation-id", op)),
            "--exclude-checks", ",".join(EXCLUDED_CHECKS),
            "--max-examples", "20",
            "--request-timeout", "10",
            "--seed", "1",
            "--no-color",
        ]  # fmt: skip
        proc = await asyncio.create_subprocess_exec(
            str(SCHEMATHESIS),
            *args,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            cwd=tmp_path,
        )
        async with asyncio.timeout(300):
            out, _ = await proc.communicate()
    report = out.decode(errors="replace")
    assert proc.returncode == 0, report[-6000:]
    m = re.search(r"(\d+) generated, (\d+) passed", report)
    assert m and m[1] == m[2] and int(m[1]) >= 100, report[-2000:]
