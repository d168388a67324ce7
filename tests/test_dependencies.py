"""Declared dependencies: correct floors, gRPC only as an extra, and a clear error without it."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from importlib.metadata import metadata, requires

from pykubelet import __version__


def test_floors_and_extras() -> None:
    reqs = requires("pykubelet") or []
    base = [r for r in reqs if "extra ==" not in r]
    assert any(r.replace(" ", "").startswith("cryptography>=45") for r in base)
    assert not any(r.startswith(("grpcio", "protobuf")) for r in base)
    grpc = [r for r in reqs if 'extra == "grpc"' in r]
    assert {r.split(">=")[0] for r in grpc} == {"grpcio", "grpcio-health-checking", "protobuf"}
    assert metadata("pykubelet")["Version"] == __version__  # one version source


def test_a_grpc_probe_without_the_extra_fails_with_the_fix() -> None:
    code = textwrap.dedent(
        """
        import asyncio, sys
        sys.modules["grpc"] = None  # as if grpcio were not installed
        from pykubelet.podspec.actions import GrpcAction, ProbeTarget, run_handler
        from tests.podspec.probefix import HostExecRunner
        out = asyncio.run(run_handler(GrpcAction(port=1), ProbeTarget(container_id="c"),
                                      HostExecRunner(), timeout_s=2))
        print(out.result.name, out.output)
        """
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == (
        "FAILURE gRPC probes need the grpc extra: pip install 'pykubelet[grpc]' (grpc)"
    )
