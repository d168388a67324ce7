"""What `pip install` gives: the wheel built from this tree, installed into a fresh venv outside
the checkout, runs a pod with the compiled helper the wheel carries (no compiler at run time)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.node import Node, wait_for
from tests.prereq import require, require_root

REPO = Path(__file__).resolve().parents[2]
POD = """\
apiVersion: v1
kind: Pod
metadata: {name: wheel}
spec:
  terminationGracePeriodSeconds: 1  # sleep as PID 1 ignores SIGTERM
  containers:
  - name: c
    image: busybox
    command: ["sh", "-c", "echo from-the-wheel; exec sleep 3600"]
"""
_NOT_SOURCE = shutil.ignore_patterns(
    ".git",
    ".venv",
    "build",
    "run",
    "node_modules",
    "*.egg-info",
    "__pycache__",
    ".*_cache",
    "pkshim",
    "pkshim.sha256",
)


def _run(argv: list[str], **kw: object) -> subprocess.CompletedProcess[str]:
    r = subprocess.run(argv, capture_output=True, text=True, **kw)  # type: ignore[call-overload]
    assert r.returncode == 0, f"{argv}: {r.stdout}\n{r.stderr}"
    return r  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A venv (outside the checkout) with the wheel that `python -m build` makes from the sdist
    of a copy of this tree (so the sdist is complete enough to build the helper)."""
    require_root()
    require(shutil.which("cc") is not None, "needs a C compiler to build the wheel")
    work = tmp_path_factory.mktemp("wheel")
    src = work / "src"
    shutil.copytree(REPO, src, ignore=_NOT_SOURCE)
    _run([sys.executable, "-m", "build", "-o", str(work / "dist"), "."], cwd=src)
    assert len(list((work / "dist").glob("pykubelet-*.tar.gz"))) == 1
    [wheel] = (work / "dist").glob("pykubelet-*.whl")
    assert wheel.name.endswith("linux_x86_64.whl") or "linux" in wheel.name  # a platform wheel
    venv = work / "venv"
    _run([sys.executable, "-m", "venv", str(venv)])
    _run([str(venv / "bin" / "pip"), "install", "-q", str(wheel)])
    shutil.rmtree(src)  # nothing may come from the source tree any more
    return venv


def test_the_installed_wheel_has_its_helper_and_no_checkout(installed: Path) -> None:
    py = str(installed / "bin" / "python")
    where = _run(
        [py, "-c", "import pykubelet, sys; print(pykubelet.__file__)"], cwd=installed
    ).stdout.strip()
    assert where.startswith(str(installed)) and not where.startswith(str(REPO))
    version = _run([str(installed / "bin" / "pykubelet"), "--version"]).stdout
    from pykubelet import __version__

    assert version == f"pykubelet {__version__}\n"
    site = Path(where).parent
    assert (site / "py.typed").exists()
    assert (site / "data" / "pykubelet.service").read_text().count("Type=notify") == 1
    helper = site / "runtime" / "process" / "native" / "pkshim"
    st = helper.stat()
    assert st.st_uid == 0 and st.st_mode & 0o022 == 0 and os.access(helper, os.X_OK)
    doctor = subprocess.run(
        [str(installed / "bin" / "pykubelet"), "doctor", "--client-ca-file", "/x"],
        capture_output=True,
        text=True,
    )
    [row] = [line for line in doctor.stdout.splitlines() if "PK-HELPER" in line]
    assert row.split()[0] == "PASS" and str(helper) in row


def test_the_installed_wheel_runs_a_pod(installed: Path, tmp_path: Path, busybox_tar: Path) -> None:
    entry = str(installed / "bin" / "pykubelet")
    empty = tmp_path / "no-compiler"
    empty.mkdir()
    node = Node(base=tmp_path, image_tar=busybox_tar, command=[entry])
    _run([entry, "images", "import", "--root-dir", str(node.root), str(busybox_tar)])
    path = os.environ["PATH"]
    try:
        # no cc reachable by the agent: the helper must come from the wheel
        os.environ["PATH"] = f"{empty}:/usr/sbin:/sbin:/bin"
        node.start()
        node.write_pod("wheel", POD)
        c = wait_for(
            lambda: (s := node.container("wheel", "c")) and "running" in s["state"] and s,
            60,
            "the pod from the wheel to run",
        )
        assert c["ready"] is True
        helper = str(installed / "lib")
        shims = [
            pid
            for pid in os.listdir("/proc")
            if pid.isdigit() and _exe(pid).startswith(helper) and _exe(pid).endswith("/pkshim")
        ]
        assert shims, "no pkshim from the installed wheel is running"
        logs = node.log_dir(node.pod("wheel") or {})
        wait_for(
            lambda: any("from-the-wheel" in p.read_text() for p in logs.rglob("*.log")),
            20,
            "the container's output",
        )
    finally:
        os.environ["PATH"] = path
        node.cleanup()


def _exe(pid: str) -> str:
    try:
        return os.readlink(f"/proc/{pid}/exe")
    except OSError:
        return ""
