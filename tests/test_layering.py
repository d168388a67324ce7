"""The "must not" column of design.md, enforced by walking every module's imports."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent / "pykubelet"

FORBIDDEN: dict[str, tuple[str, ...]] = {
    "streaming": ("asyncio", "socket", "aiohttp", "pykubelet.server", "pykubelet.runtime"),
    "auth": ("aiohttp", "pykubelet.server"),
    "api": ("aiohttp", "asyncio", "socket", "pykubelet.server", "pykubelet.runtime"),
    "logs": ("aiohttp", "pykubelet.server"),
    "pods": (
        "pykubelet.server",
        "pykubelet.runtime.process",
        "pykubelet.runtime.cri",
        "pykubelet.podspec",
        "aiohttp",
    ),
    # Pod-spec features plug into the lifecycle through WorkerDeps: never its manager or worker.
    "podspec": (
        "pykubelet.server",
        "pykubelet.pods.manager",
        "pykubelet.pods.worker",
        "pykubelet.runtime.process",
        "pykubelet.runtime.cri",
        "pykubelet.agent",
        "aiohttp",
    ),
    "core": ("pykubelet.api", "pykubelet.pods", "pykubelet.runtime", "pykubelet.server"),
    "host": ("pykubelet.pods", "pykubelet.runtime", "pykubelet.server", "aiohttp"),
    "runtime": ("pykubelet.server", "pykubelet.pods", "aiohttp"),
    # the distribution client the process runtime drives; it knows no pod and no runtime
    "registry": (
        "pykubelet.server",
        "pykubelet.pods",
        "pykubelet.podspec",
        "pykubelet.runtime.process",
        "pykubelet.runtime.cri",
    ),
    "stats": ("pykubelet.server",),
    # a client of any kubelet: only the protocol cores, the description and shared errors
    "client": ("pykubelet.pods", "pykubelet.podspec", "pykubelet.runtime", "pykubelet.agent"),
}


def test_the_shipped_package_never_imports_devtools() -> None:
    users = [
        str(p.relative_to(ROOT.parent))
        for p in ROOT.rglob("*.py")
        if any(n == "devtools" or n.startswith("devtools.") for n in _imports(p))
    ]
    assert users == []


def test_only_entry_points_and_packages_at_the_top() -> None:
    loose = sorted(p.name for p in ROOT.glob("*.py"))
    assert loose == ["__init__.py", "__main__.py", "cli.py"] or loose == ["__init__.py", "cli.py"]


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_packages_respect_their_boundaries() -> None:
    violations = []
    for package, banned in FORBIDDEN.items():
        for path in (ROOT / package).rglob("*.py"):
            for name in _imports(path):
                if any(name == b or name.startswith(b + ".") for b in banned):
                    violations.append(f"{path.relative_to(ROOT.parent)} imports {name}")
    assert violations == []


def test_every_package_declares_its_public_names() -> None:
    missing = [
        str(p.relative_to(ROOT.parent))
        for p in ROOT.rglob("__init__.py")
        if p.read_text().strip() and "__all__" not in p.read_text()
    ]
    assert missing == []
