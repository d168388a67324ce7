"""Find the native helper (``pkshim``) and launch it.

``pkshim`` is compiled from ``native/pkshim.c`` when the package is built (``setup.py``: a
platform wheel, an sdist install, or ``make venv`` for a checkout) and installed next to its
source; it is never compiled at run time. Since it runs as root in every container's setup,
it is trusted only when it and its directory are owned by root and not writable by group or
others, and only when it was built from the source shipped beside it (``pkshim.sha256``).
Otherwise ``auto`` falls back to the Python helper with a warning and ``native`` refuses.
"""

from __future__ import annotations

import hashlib
import logging
import os
import stat
import subprocess
import sys
from pathlib import Path

from pykubelet.runtime.errors import RuntimeUnavailable
from pykubelet.runtime.process.pools import run_launch

__all__ = [
    "PYSHIM_SOURCE",
    "SHIM_SOURCE",
    "helper_command",
    "launch",
    "native_helper",
    "native_helper_problem",
    "packaged_shim",
    "python_helper",
    "trust_problem",
]

NATIVE_DIR = Path(__file__).with_name("native")
SHIM_SOURCE = NATIVE_DIR / "pkshim.c"
PYSHIM_SOURCE = NATIVE_DIR / "pyshim.py"
log = logging.getLogger(__name__)


def packaged_shim() -> Path:
    """Where the build put the compiled helper."""
    return NATIVE_DIR / "pkshim"


def python_helper() -> list[str]:
    """The Python fallback of the helper (no compiler needed; ~9 MiB per process)."""
    return [sys.executable, "-I", "-S", str(PYSHIM_SOURCE)]


def trust_problem(path: Path) -> str | None:
    """Why ``path`` must not be run as root: not root-owned, or writable by group/others
    (the file or its directory, either of which would let someone else replace it)."""
    for p in (path, path.parent):
        try:
            st = p.stat()
        except OSError as e:
            return f"{p}: {e.strerror}"
        if st.st_uid != 0:
            return f"{p} is owned by uid {st.st_uid}, not root"
        if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
            return f"{p} is writable by group or others (mode {stat.S_IMODE(st.st_mode):o})"
    return None


def native_helper_problem() -> str | None:
    """None when the packaged helper may be used, else why not (and how to fix it)."""
    binary = packaged_shim()
    if not binary.is_file():
        return (
            f"the compiled helper {binary} is missing: reinstall pykubelet from a platform wheel, "
            "or build it with a C compiler (pip install . / make venv)"
        )
    problem = trust_problem(binary)
    if problem is not None:
        return f"the compiled helper is not trusted: {problem}"
    recorded = NATIVE_DIR / "pkshim.sha256"
    if SHIM_SOURCE.is_file() and recorded.is_file():
        current = hashlib.sha256(SHIM_SOURCE.read_bytes()).hexdigest()
        if recorded.read_text().strip() != current:
            return f"the compiled helper is older than {SHIM_SOURCE.name}: rebuild (make venv)"
    if not os.access(binary, os.X_OK):
        return f"the compiled helper {binary} is not executable"
    return None


def native_helper() -> Path:
    """The trusted compiled helper, or ``RuntimeUnavailable`` saying why not."""
    problem = native_helper_problem()
    if problem is not None:
        raise RuntimeUnavailable(problem)
    return packaged_shim()


def helper_command(bin_dir: Path, kind: str) -> list[str]:
    """The helper's argv prefix: ``kind`` is "native", "python" or "auto" (the compiled helper
    when it is installed and trusted, else Python). ``bin_dir`` is unused (kept for callers:
    the helper is no longer built into the state directory)."""
    if kind == "python":
        return python_helper()
    try:
        return [str(native_helper())]
    except RuntimeUnavailable as e:
        if kind == "native":
            raise
        log.warning("%s; using the Python helper instead (about 10 MiB per container)", e)
        return python_helper()


def _run(argv: list[str], env: dict[str, str] | None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, env=env, check=False)


async def launch(argv: list[str], env: dict[str, str] | None = None) -> list[int]:
    """Run a daemonizing helper mode as its own process; return the pids it reports (daemon
    first). The compiled helper is launched by its zygote instead (``zygote.py``); this path
    serves the Python fallback helper.

    The helper is forked and waited for in a thread of the launch pool (``pools.py``): a
    hundred pods starting at once then neither block the event loop in fork/exec nor start a
    child-watcher thread each, nor queue behind (or starve) the file work.
    """
    proc = await run_launch(_run, argv, env)
    line = proc.stdout.decode(errors="replace").strip()
    if proc.returncode != 0 or not line.startswith("OK"):
        mode = next((a for a in argv if a in ("pause", "run")), argv[0])
        raise RuntimeUnavailable(
            f"helper {mode} failed: {line or proc.stderr.decode(errors='replace').strip()}"
        )
    return [int(x) for x in line.split()[1:]]
