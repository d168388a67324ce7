"""An image whose symlinks point at the host (issue #14, hole 15). The container init of the C
helper used to resolve bind-mount targets (and /dev, /proc, /sys) through the image's paths
before pivot_root, so ``/data -> /<host dir>`` made it create directories and mount on the host
as root. Runs the real helpers (``pkshim init`` and its Python fallback) as root on a real
overlay root; the "host" they must not touch is a directory of this test."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from pykubelet.runtime.process.create import write_init_spec
from pykubelet.runtime.process.shimbin import native_helper, native_helper_problem, python_helper
from tests.prereq import require, require_root


def _hostile_image(lower: Path, victim: Path) -> None:
    (lower / "bin").mkdir(parents=True)
    shutil.copy2("/bin/busybox", lower / "bin" / "busybox")
    for tool in ("sh", "cat", "ls", "test"):
        (lower / "bin" / tool).symlink_to("busybox")
    (lower / "data").symlink_to(victim)  # absolute: the host path
    depth = "/".join([".."] * 12)
    (lower / "up").symlink_to(f"{depth}{victim}")  # relative, climbing out
    (lower / "dev").symlink_to(victim / "dev")
    (lower / "proc").symlink_to(victim / "proc")
    (lower / "sys").symlink_to(victim / "sys")


@pytest.mark.parametrize("helper", ["native", "python"])
def test_mount_targets_stay_inside_the_root(tmp_path: Path, helper: str) -> None:
    require_root()
    require(Path("/bin/busybox").is_file(), "needs Debian's busybox-static (/bin/busybox)")
    require("overlay" in Path("/proc/filesystems").read_text(), "needs overlayfs in the kernel")
    victim = tmp_path / "host-victim"
    victim.mkdir()
    image = tmp_path / "image"
    _hostile_image(image, victim)
    src_dir = tmp_path / "volume"
    src_dir.mkdir()
    (src_dir / "marker").write_text("volume-content\n")
    src_file = tmp_path / "config.txt"
    src_file.write_text("file-content\n")
    upper, work, merged = tmp_path / "upper", tmp_path / "work", tmp_path / "merged"
    for d in (upper, work, merged):
        d.mkdir()
    spec = tmp_path / "spec"
    write_init_spec(
        spec,
        [
            ("mountns",),
            ("rootfs", str(image), str(upper), str(work), str(merged)),
            ("sysfs", "ro"),
            ("mount", "0", str(src_dir), "/data/sub/deeper"),
            ("mount", "1", str(src_file), "/up/etc/file.txt"),
            ("arg", "/bin/sh"),
            ("arg", "-c"),
            ("arg", "cat /data/sub/deeper/marker /up/etc/file.txt && test -c /dev/null && "
                    "test -d /proc/self && echo ok"),
        ],
    )  # fmt: skip
    if helper == "native":
        problem = native_helper_problem()
        require(problem is None, f"the compiled helper: {problem} (make venv builds it)")
        command = [str(native_helper())]
    else:
        command = python_helper()
    out = subprocess.run(
        [*command, "init", str(spec)], capture_output=True, text=True, timeout=60, check=False
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout == "volume-content\nfile-content\nok\n"
    assert sorted(os.listdir(victim)) == [], "the helper wrote to the host through a symlink"
    # what the mounts needed was made inside the container's root (its overlay upper dir)
    assert (upper / str(victim).lstrip("/") / "sub" / "deeper").is_dir()
    assert (upper / str(victim).lstrip("/") / "etc" / "file.txt").is_file()
