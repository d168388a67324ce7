"""Run a Python child as ``nobody`` from a clone anywhere, even under a mode-700 ``/root``.

``nobody`` cannot reach a checkout (or its ``.venv``) below a private directory. The child is
started in a mount namespace of its own (``unshare -m``) where the tree is bind-mounted on a
world-traversable directory, and imports from there: nothing is copied, and the mount
disappears with the child.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

from tests.prereq import require_binary

REPO = Path(__file__).resolve().parent.parent
NOBODY = 65534
_BIND_THEN_EXEC = 'mount --bind "$1" "$2" && shift 2 && exec "$@"'


@contextlib.contextmanager
def as_nobody(
    python_args: list[str], tree: Path = REPO
) -> Iterator[tuple[list[str], dict[str, str]]]:
    """``(argv, env)`` running ``python python_args...`` as nobody with ``tree`` importable."""
    unshare, setpriv = require_binary("unshare"), require_binary("setpriv")
    mount = Path(tempfile.mkdtemp(prefix="pykubelet-nobody-"))
    try:
        mount.chmod(0o755)
        exe = Path(sys.executable)
        if exe.is_relative_to(tree):  # a venv inside the clone: reach it through the mount
            exe = mount / exe.relative_to(tree)
        argv = [
            unshare,
            "--mount",
            "--propagation",
            "private",
            "sh",
            "-c",
            _BIND_THEN_EXEC,
            "sh",
            str(tree),
            str(mount),
            setpriv,
            f"--reuid={NOBODY}",
            f"--regid={NOBODY}",
            "--clear-groups",
            str(exe),
            *python_args,
        ]
        env = {**os.environ, "PYTHONPATH": str(mount)}
        yield argv, env
    finally:
        with contextlib.suppress(OSError):
            mount.rmdir()
