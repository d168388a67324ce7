"""Which helper the runtime uses: the compiled C one, or the Python fallback without cc."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from pykubelet.runtime import RuntimeUnavailable
from pykubelet.runtime.process.shimbin import ensure_shim, helper_command, python_helper
from tests.prereq import require_binary


def test_native_helper_is_built_once_per_source(tmp_path: Path) -> None:
    require_binary("cc")
    first = helper_command(tmp_path, "auto")
    assert len(first) == 1 and Path(first[0]).name.startswith("pkshim-")
    mtime = Path(first[0]).stat().st_mtime_ns
    assert helper_command(tmp_path, "native") == first
    assert Path(first[0]).stat().st_mtime_ns == mtime  # reused, not rebuilt


def test_without_a_compiler(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    empty = tmp_path / "empty-path"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))  # a host with no cc at all
    assert helper_command(tmp_path / "bin", "auto") == python_helper()
    with pytest.raises(RuntimeUnavailable, match="C compiler"):
        helper_command(tmp_path / "bin", "native")
    assert helper_command(tmp_path / "bin", "python") == python_helper()


def _assert_one_working_helper(bin_dir: Path, paths: list[Path]) -> None:
    assert len(set(paths)) == 1
    built = paths[0]
    assert os.access(built, os.X_OK)
    assert [p.name for p in bin_dir.iterdir()] == [built.name]  # no temp file left behind
    out = subprocess.run([str(built)], capture_output=True, check=False)
    assert b"usage" in (out.stdout + out.stderr).lower()  # it is a complete, runnable binary


def test_concurrent_builds_on_a_fresh_root_in_threads(tmp_path: Path) -> None:
    require_binary("cc")
    bin_dir = tmp_path / "bin"
    start = threading.Barrier(8)

    def build() -> Path:
        start.wait(timeout=30)
        return ensure_shim(bin_dir)

    with ThreadPoolExecutor(8) as pool:
        paths = list(pool.map(lambda _: build(), range(8)))
    _assert_one_working_helper(bin_dir, paths)


def test_concurrent_builds_on_a_fresh_root_in_processes(tmp_path: Path) -> None:
    require_binary("cc")
    bin_dir = tmp_path / "bin"
    code = (
        "import sys; from pathlib import Path; "
        "from pykubelet.runtime.process.shimbin import ensure_shim; "
        "print(ensure_shim(Path(sys.argv[1])))"
    )
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code, str(bin_dir)], stdout=subprocess.PIPE, text=True
        )
        for _ in range(4)
    ]
    paths = []
    for p in procs:
        out, _ = p.communicate(timeout=120)
        assert p.returncode == 0
        paths.append(Path(out.strip()))
    _assert_one_working_helper(bin_dir, paths)
