"""Build step: compile the container helper ``pkshim`` into the package.

Everything else is declared in pyproject.toml. The helper runs as root in each container's
set-up, so it is built here, once, by whoever builds the wheel (or installs the sdist), and
never on the node at run time. The wheel is therefore a platform wheel.
"""

from __future__ import annotations

import hashlib
import os
import shlex
import subprocess
import sysconfig
from pathlib import Path

from setuptools import Command, setup
from setuptools.command.build import build
from setuptools.dist import Distribution

NATIVE = Path("pykubelet", "runtime", "process", "native")
SOURCE = NATIVE / "pkshim.c"


class BuildHelper(Command):
    """Compile ``pkshim.c`` next to its source in the build tree (or the checkout, editable)."""

    description = "compile the pkshim container helper"
    user_options: list[tuple[str, str | None, str]] = []

    def initialize_options(self) -> None:
        self.build_lib: str | None = None
        self.editable_mode = False

    def finalize_options(self) -> None:
        self.set_undefined_options("build_py", ("build_lib", "build_lib"))

    def _out_dir(self) -> Path:
        return NATIVE if self.editable_mode else Path(self.build_lib or "build/lib") / NATIVE

    def run(self) -> None:
        if os.environ.get("PYKUBELET_BUILD_HELPER", "1") == "0":
            self.warn("PYKUBELET_BUILD_HELPER=0: no pkshim; containers will use the Python helper")
            return
        out = self._out_dir()
        out.mkdir(parents=True, exist_ok=True)
        cc = shlex.split(os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc")
        tmp = out / ".pkshim.tmp"
        cmd = [*cc, "-O2", "-Wall", "-o", str(tmp), str(SOURCE)]
        self.announce(" ".join(cmd), level=2)
        try:
            subprocess.run(cmd, check=True)
        except (OSError, subprocess.CalledProcessError) as e:
            raise SystemExit(
                f"building pkshim failed ({e}): it needs a C compiler (Debian: apt-get install "
                "gcc libc6-dev); PYKUBELET_BUILD_HELPER=0 builds without it (containers then "
                "use the slower Python helper)"
            ) from e
        os.chmod(tmp, 0o755)
        os.replace(tmp, out / "pkshim")
        digest = hashlib.sha256(SOURCE.read_bytes()).hexdigest()
        (out / "pkshim.sha256").write_text(digest + "\n")

    def get_outputs(self) -> list[str]:
        out = self._out_dir()
        return [str(out / "pkshim"), str(out / "pkshim.sha256")]

    def get_source_files(self) -> list[str]:
        return [str(SOURCE)]


class BuildWithHelper(build):
    sub_commands = [*build.sub_commands, ("build_pkshim", None)]


class PlatformDistribution(Distribution):
    """The wheel carries a compiled executable: tag it for the platform, not py3-none-any."""

    def has_ext_modules(self) -> bool:
        return True


setup(
    cmdclass={"build": BuildWithHelper, "build_pkshim": BuildHelper},
    distclass=PlatformDistribution,
)
