"""Which helper the runtime uses: the compiled C one, or the Python fallback without cc."""

from __future__ import annotations

from pathlib import Path

import pytest

from pykubelet.runtime import RuntimeUnavailable
from pykubelet.runtime.process.shimbin import helper_command, python_helper
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
