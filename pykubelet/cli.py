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

from pykubelet.config import ConfigError, KubeletConfiguration, load_config
from pykubelet.core.errors import InvalidInput, PykubeletError
from pykubelet.runtime.protocol import ImageService, Runtime

__all__ = ["main"]

USAGE = """\
usage: pykubelet COMMAND [ARGS]

commands:
  run [--config FILE] [flags]   run the node agent (pykubelet run --help for flags)
  images import FILE            load an OCI layout or docker-archive tarball into the image store
  images list                   list the images in the store
  images pull REF               pull an image from its registry (--creds, --docker-config-file)
  images rm REF...              remove images no container uses
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
    """``images import FILE`` / ``images list``: the process runtime's local image store."""
    p = argparse.ArgumentParser(prog="pykubelet images")
    sub = p.add_subparsers(dest="cmd", required=True)
    imp = sub.add_parser("import", help="load an OCI layout or docker-archive tarball")
    imp.add_argument("file")
    imp.add_argument("--ref", default=None, help="tag the image with this reference")
    lst = sub.add_parser("list", help="list the images in the store")
    pull = sub.add_parser("pull", help="pull an image from its registry")
    pull.add_argument("ref")
    pull.add_argument("--creds", default="", help="USER:PASSWORD (else the docker config)")
    pull.add_argument("--docker-config-file", default="", help="as the run flag")
    pull.add_argument("--image-registry-ca-file", default="", help="as the run flag")
    rm = sub.add_parser("rm", help="remove images that no container uses")
    rm.add_argument("refs", nargs="+")
    for sp in (imp, lst, pull, rm):
        sp.add_argument("--root-dir", default=KubeletConfiguration().root_dir)
    args = p.parse_args(list(argv))
    if args.cmd in ("pull", "rm"):
        return _images_pull_rm(args)
    try:
        runtime_cls = importlib.import_module("pykubelet.runtime.process").ProcessRuntime
    except (ImportError, AttributeError):
        print("pykubelet images: the process runtime is not available", file=sys.stderr)
        return 1
    runtime = runtime_cls(Path(args.root_dir))
    try:
        if args.cmd == "import":
            info = asyncio.run(runtime.import_image(Path(args.file), ref=args.ref))
            print(f"imported {', '.join(info.repo_tags) or info.id} ({info.id})")
        else:
            for info in asyncio.run(runtime.list_images()):
                print(f"{info.id[:19]}  {info.size_bytes:>12}  {' '.join(info.repo_tags)}")
    except (PykubeletError, OSError) as e:
        print(f"pykubelet images: {e}", file=sys.stderr)
        return 1
    return 0


def _images_pull_rm(args: argparse.Namespace) -> int:
    from pykubelet.runtime.process import ProcessRuntime

    rt = ProcessRuntime(
        Path(args.root_dir), registry_ca_file=getattr(args, "image_registry_ca_file", "")
    )
    try:
        if args.cmd == "pull":
            print(f"pulled {args.ref} ({asyncio.run(_pull_ref(rt, args))})")
        else:
            print("\n".join(asyncio.run(_remove_refs(rt, rt, args.refs))))
    except InvalidInput as e:
        print(f"pykubelet images: {e}", file=sys.stderr)
        return 2
    except (PykubeletError, OSError) as e:
        print(f"pykubelet images: {e}", file=sys.stderr)
        return 1
    return 0


async def _pull_ref(images: ImageService, args: argparse.Namespace) -> str:
    """``images pull``: ``--creds``, else the docker config (``--docker-config-file`` or the
    node's search path), each matching credential in turn, as a pod's pull would."""
    from pykubelet.pods import DockerConfigFiles, pull_with_keyring
    from pykubelet.runtime.types import RegistryAuth

    if args.creds:
        user, sep, password = args.creds.partition(":")
        if not sep:
            raise InvalidInput("--creds: expected USER:PASSWORD")
        return await images.pull_image(args.ref, RegistryAuth(username=user, password=password))
    files = DockerConfigFiles.for_node(args.docker_config_file, args.root_dir)
    files.check()
    return await pull_with_keyring(images, args.ref, files.keyring())


async def _remove_refs(images: ImageService, runtime: Runtime, refs: Sequence[str]) -> list[str]:
    """``images rm``: refuses an image any container (running or not) was created from."""
    used = {c.image_ref for c in await runtime.list_containers()}
    removed = []
    for ref in refs:
        info = await images.image_status(ref)
        if info is None:
            raise InvalidInput(f"{ref}: no such image")
        if info.id in used:
            raise InvalidInput(f"{ref}: image {info.id} is used by a container")
        await images.remove_image(info.id)
        removed.append(f"deleted {ref} ({info.id})")
    return removed


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
