"""Find or build the native helper (``pkshim``) and launch it.

The C source ships in the package and is compiled with ``cc`` on first use into
``<root>/bin/pkshim-<source hash>`` (the hash keeps an upgraded agent from reusing an old binary).
"""

from __future__ import annotations

import hashlib
import logging
import os
import secrets
import shutil
import subprocess
import sys
import threading
from pathlib import Path

from pykubelet.runtime.errors import RuntimeUnavailable
from pykubelet.runtime.process.pools import run_launch

__all__ = [
    "PYSHIM_SOURCE",
    "SHIM_SOURCE",
    "ensure_shim",
    "helper_command",
    "launch",
    "python_helper",
]

SHIM_SOURCE = Path(__file__).with_name("native") / "pkshim.c"
PYSHIM_SOURCE = Path(__file__).with_name("native") / "pyshim.py"
log = logging.getLogger(__name__)
_BUILD_LOCK = threading.Lock()


def python_helper() -> list[str]:
    """The Python fallback of the helper (no compiler needed; ~9 MiB per process)."""
    return [sys.executable, "-I", "-S", str(PYSHIM_SOURCE)]


def helper_command(bin_dir: Path, kind: str) -> list[str]:
    """The helper's argv prefix: ``kind`` is "native", "python" or "auto" (native when a C
    compiler can build it, else Python). Blocking: call from a thread."""
    if kind == "python":
        return python_helper()
    try:
        return [str(ensure_shim(bin_dir))]
    except RuntimeUnavailable as e:
        if kind == "native":
            raise
        log.warning("%s; using the Python helper instead (about 10 MiB per container)", e)
        return python_helper()


def ensure_shim(bin_dir: Path) -> Path:
    """The compiled helper, building it if needed (blocking: call from a thread)."""
    source = SHIM_SOURCE.read_bytes()
    digest = hashlib.sha256(source).hexdigest()[:12]
    target = bin_dir / f"pkshim-{digest}"
    if target.is_file() and os.access(target, os.X_OK):
        return target
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        raise RuntimeUnavailable(
            "the process runtime needs a C compiler (cc) once, to build its per-container "
            "supervisor: install gcc"
        )
    bin_dir.mkdir(parents=True, exist_ok=True)
    with _BUILD_LOCK:  # threads of this agent build once; the unique name covers other agents
        if target.is_file() and os.access(target, os.X_OK):
            return target
        tmp = bin_dir / f".pkshim-{digest}.{os.getpid()}.{secrets.token_hex(6)}"
        try:
            proc = subprocess.run(
                [cc, "-O2", "-o", str(tmp), str(SHIM_SOURCE)],
                capture_output=True,
                text=True,
                check=False,
            )
            if proc.returncode != 0:
                raise RuntimeUnavailable(
                    f"building {SHIM_SOURCE.name} failed: {proc.stderr.strip()}"
                )
            os.chmod(tmp, 0o755)  # executable before it appears under its final name
            os.replace(tmp, target)
        finally:
            tmp.unlink(missing_ok=True)
    return target


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
