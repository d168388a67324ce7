"""The ``pykubelet`` command: ``run``, ``images import``, ``certs``, ``doctor``.

Every subcommand is a thin call into the library; exit status 0 on success, 1 on a runtime
failure, 2 on bad input (one line per problem on stderr).
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import logging
import signal
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from pykubelet.config import ConfigError, KubeletConfiguration, load_config
from pykubelet.core.errors import PykubeletError

__all__ = ["main"]

USAGE = """\
usage: pykubelet COMMAND [ARGS]

commands:
  run [--config FILE] [flags]   run the node agent (pykubelet run --help for flags)
  images import FILE            load an OCI layout or docker-archive tarball into the image store
  images list|pull REF|rm REF   list, pull or remove images (--container-runtime-endpoint: CRI)
  certs ca|serving|client ...   create a CA, the serving certificate, client certificates
  doctor [--config FILE]        check a configuration against the CIS kubelet benchmark
"""


def _setup_logging() -> None:
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


def run_main(argv: Sequence[str]) -> int:
    try:
        config = load_config(argv)
    except ConfigError as e:
        for line in e.problems:
            print(f"pykubelet: invalid configuration: {line}", file=sys.stderr)
        return 2
    _setup_logging()
    for name in config.ignored_fields:
        logging.getLogger("pykubelet.config").warning(
            "configuration field %s is accepted but not implemented (docs/config.md)", name
        )
    try:
        asyncio.run(_run_agent(config))
    except PykubeletError as e:
        print(f"pykubelet: {e}", file=sys.stderr)
        return 1
    return 0


async def _run_agent(config: KubeletConfiguration) -> None:
    from pykubelet.agent import Agent

    agent = Agent(config)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, agent.stop)
    await agent.run()


def images_main(argv: Sequence[str]) -> int:
    """``images import|list|pull|rm``: the process runtime's image store, or with
    ``--container-runtime-endpoint`` the CRI runtime's (containerd's ``k8s.io`` namespace)."""
    p = argparse.ArgumentParser(prog="pykubelet images")
    sub = p.add_subparsers(dest="cmd", required=True)
    imp = sub.add_parser("import", help="load an OCI layout or docker-archive tarball")
    imp.add_argument("file")
    imp.add_argument("--ref", default=None, help="tag the image with this reference")
    lst = sub.add_parser("list", help="list the images in the store")
    pull = sub.add_parser("pull", help="pull an image into the store")
    pull.add_argument("ref")
    rm = sub.add_parser("rm", help="remove an image from the store")
    rm.add_argument("ref")
    for sp in (imp, lst, pull, rm):
        sp.add_argument("--root-dir", default=KubeletConfiguration().root_dir)
        sp.add_argument(
            "--container-runtime-endpoint",
            default="",
            help="unix:///path/to/containerd.sock: the CRI runtime's images",
        )
    args = p.parse_args(list(argv))
    try:
        return asyncio.run(_images(args))
    except (PykubeletError, OSError) as e:
        print(f"pykubelet images: {e}", file=sys.stderr)
        return 1


async def _images(args: argparse.Namespace) -> int:
    if args.container_runtime_endpoint:
        from pykubelet.runtime.cri import CriRuntime

        runtime: Any = CriRuntime(args.container_runtime_endpoint)
    else:
        try:
            runtime_cls = importlib.import_module("pykubelet.runtime.process").ProcessRuntime
        except (ImportError, AttributeError):
            print("pykubelet images: the process runtime is not available", file=sys.stderr)
            return 1
        runtime = runtime_cls(Path(args.root_dir))
    try:
        await runtime.start()
        if args.cmd == "import":
            info = await runtime.import_image(Path(args.file), ref=args.ref)
            print(f"imported {', '.join(info.repo_tags) or info.id} ({info.id})")
        elif args.cmd == "pull":
            info = await runtime.pull_image(args.ref)
            print(f"pulled {args.ref} ({info.id})")
        elif args.cmd == "rm":
            if not hasattr(runtime, "remove_image"):
                print("pykubelet images rm: not supported by the process runtime", file=sys.stderr)
                return 1
            await runtime.remove_image(args.ref)
            print(f"removed {args.ref}")
        else:
            for info in await runtime.list_images():
                print(f"{info.id[:19]}  {info.size_bytes:>12}  {' '.join(info.repo_tags)}")
    finally:
        await runtime.aclose()
    return 0


def _delegate(module: str, func: str, argv: Sequence[str]) -> int:
    try:
        fn: Callable[[Sequence[str]], int] = getattr(importlib.import_module(module), func)
    except (ImportError, AttributeError):
        print(f"pykubelet: {module}.{func} is not available in this build", file=sys.stderr)
        return 1
    return fn(list(argv))


COMMANDS: dict[str, Callable[[Sequence[str]], int]] = {
    "run": run_main,
    "images": images_main,
    "certs": lambda argv: _delegate("pykubelet.security.certs", "certs_main", argv),
    "doctor": lambda argv: _delegate("pykubelet.security.doctor", "doctor_main", argv),
}


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help", "help"):
        print(USAGE, end="")
        return 0 if args else 2
    command = COMMANDS.get(args[0])
    if command is None:
        print(f"pykubelet: unknown command {args[0]!r}\n{USAGE}", file=sys.stderr, end="")
        return 2
    return command(args[1:])


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
