"""Which helper the runtime uses: the compiled one shipped in the package (never built at run
time, trusted only when root owns it and nobody else can write it), or the Python fallback."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from pykubelet.runtime import RuntimeUnavailable
from pykubelet.runtime.process import shimbin
from pykubelet.runtime.process.shimbin import (
    helper_command,
    native_helper,
    native_helper_problem,
    packaged_shim,
    python_helper,
    trust_problem,
)
from tests.prereq import require

NOBODY = 65534


def _require_root_and_helper() -> None:
    require(os.geteuid() == 0, "needs root (to own and chown helper copies)")
    problem = native_helper_problem()
    require(problem is None, f"needs the compiled pkshim (make venv): {problem}")


def test_the_packaged_helper_is_used_without_any_compiler(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _require_root_and_helper()
    empty = tmp_path / "empty-path"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))  # a node with no cc at all
    argv = helper_command(tmp_path / "bin", "auto")
    assert argv == [str(packaged_shim())]
    assert helper_command(tmp_path / "bin", "native") == argv
    assert not (tmp_path / "bin").exists()  # nothing built into the state directory
    out = subprocess.run(argv, capture_output=True, check=False)
    assert b"usage" in (out.stdout + out.stderr).lower()  # a complete, runnable binary
    assert helper_command(tmp_path / "bin", "python") == python_helper()


@pytest.fixture
def shipped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the installed native/ directory, as root would install it, put in its place."""
    _require_root_and_helper()
    native = tmp_path / "native"
    native.mkdir(mode=0o755)
    os.chmod(native, 0o755)
    for name in ("pkshim", "pkshim.c", "pkshim.sha256"):
        shutil.copy2(packaged_shim().parent / name, native / name)
    monkeypatch.setattr(shimbin, "NATIVE_DIR", native)
    monkeypatch.setattr(shimbin, "SHIM_SOURCE", native / "pkshim.c")
    assert native_helper() == native / "pkshim"
    return native


def test_a_helper_others_can_write_is_refused(shipped: Path) -> None:
    os.chmod(shipped / "pkshim", 0o775)
    assert native_helper_problem() == (
        f"the compiled helper is not trusted: {shipped / 'pkshim'} is writable by group or "
        "others (mode 775)"
    )
    with pytest.raises(RuntimeUnavailable, match="not trusted"):
        helper_command(shipped, "native")
    assert helper_command(shipped, "auto") == python_helper()
    os.chmod(shipped / "pkshim", 0o755)
    os.chmod(shipped, 0o777)  # the directory: anyone could swap the binary
    assert trust_problem(shipped / "pkshim") == (
        f"{shipped} is writable by group or others (mode 777)"
    )


def test_a_helper_not_owned_by_root_is_refused(shipped: Path) -> None:
    os.chown(shipped / "pkshim", NOBODY, NOBODY)
    assert native_helper_problem() == (
        f"the compiled helper is not trusted: {shipped / 'pkshim'} is owned by uid {NOBODY}, "
        "not root"
    )
    assert helper_command(shipped, "auto") == python_helper()


def test_a_stale_or_missing_helper_is_refused(shipped: Path) -> None:
    with (shipped / "pkshim.c").open("a") as f:
        f.write("\n/* edited after the build */\n")
    assert native_helper_problem() == (
        "the compiled helper is older than pkshim.c: rebuild (make venv)"
    )
    new = hashlib.sha256((shipped / "pkshim.c").read_bytes()).hexdigest()
    (shipped / "pkshim.sha256").write_text(new + "\n")
    assert native_helper_problem() is None
    (shipped / "pkshim").unlink()
    problem = native_helper_problem()
    assert problem is not None and problem.startswith(
        f"the compiled helper {shipped / 'pkshim'} is missing"
    )
    with pytest.raises(RuntimeUnavailable, match="missing"):
        native_helper()
