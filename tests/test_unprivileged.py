"""Tests that drop to ``nobody`` work from a clone under a private (mode 700) directory."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.prereq import require, require_binary
from tests.unprivileged import NOBODY, as_nobody


def test_a_clone_under_a_private_directory_is_importable_as_nobody(tmp_path: Path) -> None:
    require(os.geteuid() == 0, "needs root (to switch to nobody)")
    secret = tmp_path / "root-like"  # like /root: only its owner may enter
    clone = secret / "clone"
    (clone / "probe_pkg").mkdir(parents=True)
    (clone / "probe_pkg" / "__init__.py").write_text("ANSWER = 42\n")
    for d in (clone, clone / "probe_pkg"):
        d.chmod(0o755)
    (clone / "probe_pkg" / "__init__.py").chmod(0o644)
    secret.chmod(0o700)
    tmp_path.chmod(0o755)
    code = ["-c", "import os, probe_pkg; print(os.getuid(), probe_pkg.ANSWER)"]
    setpriv = require_binary("setpriv")
    plain = subprocess.run(
        [
            setpriv,
            f"--reuid={NOBODY}",
            f"--regid={NOBODY}",
            "--clear-groups",
            sys.executable,
            *code,
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(clone)},
    )
    assert plain.returncode != 0  # the problem: nobody cannot reach the clone
    with as_nobody(code, tree=clone) as (argv, env):
        r = subprocess.run(argv, capture_output=True, text=True, env=env)
    assert (r.returncode, r.stdout) == (0, f"{NOBODY} 42\n"), r.stderr
