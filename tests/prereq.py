"""Prerequisite checks for tests: fail in CI (CI=true), skip with the reason elsewhere.

A test that needs root, a Debian package or a kernel feature calls ``require(ok, reason)``;
it never skips silently in CI, where every prerequisite is installed by the project's scripts.
"""

from __future__ import annotations

import os
import shutil

import pytest

IN_CI = os.environ.get("CI", "").lower() == "true"


def require(ok: bool, reason: str) -> None:
    if ok:
        return
    if IN_CI:
        pytest.fail(f"prerequisite missing in CI: {reason}")
    pytest.skip(reason)


def require_root() -> None:
    require(os.geteuid() == 0, "needs root (namespaces, cgroups, mounts)")


def require_binary(name: str) -> str:
    path = shutil.which(name)
    require(path is not None, f"needs the {name!r} program on PATH")
    assert path is not None
    return path
