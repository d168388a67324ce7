"""The long fuzzing run: every target of ``tests/security/test_fuzz.py`` with ``--examples``
inputs each (hypothesis), one target at a time, reporting inputs, time and the outcome.

    .venv/bin/python bench/bench_fuzz.py [--examples 100000]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGETS = (
    "test_spdy_session",
    "test_spdy_frame_decoder",
    "test_websocket_channel_codec",
    "test_resize_decoder",
    "test_path_cleaner_and_router",
    "test_manifest_parser",
    "test_manifest_yaml_text",
    "test_token_file_parser",
)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--examples", type=int, default=100_000)
    p.add_argument("--targets", nargs="*", default=list(TARGETS))
    a = p.parse_args()
    env = {**os.environ, "PYKUBELET_FUZZ_EXAMPLES": str(a.examples)}
    print(f"{'target':<32} {'inputs':>9} {'seconds':>8} {'result':>8}")
    failed = 0
    for name in a.targets:
        t0 = time.monotonic()
        out = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:randomly", "-p", "no:cacheprovider",
             f"tests/security/test_fuzz.py::{name}"],
            cwd=ROOT, env=env, capture_output=True, text=True, check=False,
        )  # fmt: skip
        ok = out.returncode == 0
        failed += not ok
        print(f"{name:<32} {a.examples:>9} {time.monotonic() - t0:>8.0f} "
              f"{'ok' if ok else 'FAILED':>8}")  # fmt: skip
        if not ok:
            print(out.stdout[-3000:])
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
