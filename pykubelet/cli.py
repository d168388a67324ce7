"""The ``pykubelet`` command: ``run``, ``images``, ``certs``, ``doctor``, ``client``,
``completion``.

Every subcommand is a thin call into the library; exit status 0 on success, 1 on a runtime
failure, 2 on bad input (one line per problem on stderr). A start-up failure is one line naming
the cause and the fix, never a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import errno
import importlib
import json
import logging
import re
import signal
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pykubelet import __version__
from pykubelet.config import (
    ConfigError,
    KubeletConfiguration,
    configz,
    field_status,
    load_config,
)
from pykubelet.core.errors import InvalidInput, PykubeletError
from pykubelet.core.logformat import configure_logging
from pykubelet.host import sdnotify
from pykubelet.runtime.protocol import ImageService, Runtime

if TYPE_CHECKING:
    from pykubelet.server.eventloop import LoopChoice

__all__ = ["main"]

USAGE = """\
usage: pykubelet COMMAND [ARGS]

commands:
  run [--config FILE] [flags]   run the node agent (pykubelet run --help for flags)
  images import FILE            load an OCI layout or docker-archive tarball into the image store
  images list                   list the images in the store
  images pull REF               pull an image from its registry (--creds, --docker-config-file)
  images rm REF...              remove images no container uses
                                (images: --container-runtime-endpoint for containerd's store)
  certs ca|serving|client ...   create a CA, the serving certificate, client certificates
  doctor [--config FILE]        check a configuration against the CIS kubelet benchmark
  client pods|logs|exec|...     talk to a kubelet's API (pykubelet client --help)
  completion bash|zsh           print a shell completion script
  version                       print the version (also --version)
"""
log = logging.getLogger("pykubelet.cli")


def _warn_about(config: KubeletConfiguration) -> None:
    """One warning per field that is set but not enforced, and per unknown field."""
    cfg_log = logging.getLogger("pykubelet.config")
    for name in config.ignored_fields:
        cfg_log.warning(
            "%s is accepted but NOT ENFORCED: pykubelet does not act on it (docs/config.md)",
            name,
            extra={"field": name, "status": field_status(name)},
        )
    for name in config.unknown_fields:
        cfg_log.warning(
            "%s is not a KubeletConfiguration v1beta1 field: ignored (--strict-config refuses it)",
            name,
            extra={"field": name, "status": "unknown"},
        )


def _check_helper() -> None:
    """Say at start which container helper will run (the compiled one only when trusted)."""
    from pykubelet.runtime.process.shimbin import native_helper_problem, packaged_shim

    problem = native_helper_problem()
    if problem is None:
        log.info(
            "container helper: %s (root-owned, built from the shipped source)", packaged_shim()
        )
    else:
        log.warning("container helper: %s; the Python helper will be used (~10 MiB each)", problem)


def _event_loop() -> LoopChoice:
    """uvloop when installed (``PYKUBELET_EVENT_LOOP`` overrides); said at start."""
    from pykubelet.server.eventloop import choose_loop

    choice = choose_loop()
    log.info("event loop: %s", choice.why)
    return choice


def run_main(argv: Sequence[str]) -> int:
    try:
        config = load_config(argv)
    except ConfigError as e:
        for line in e.problems:
            print(f"pykubelet: invalid configuration: {line}", file=sys.stderr)
        return 2
    configure_logging(config.logging_format, config.log_verbosity)
    _warn_about(config)
    log.debug("effective configuration: %s", json.dumps(configz(config), sort_keys=True))
    if config.runtime == "process":
        _check_helper()
    try:
        loop = _event_loop()
        with asyncio.Runner(loop_factory=loop.factory) as runner:
            runner.run(_run_agent(config))
    except BaseException as e:  # every failure becomes one line
        if isinstance(e, KeyboardInterrupt | SystemExit):
            raise
        line = explain_failure(e, config)
        log.debug("start-up failure", exc_info=e)
        print(f"pykubelet: {line}", file=sys.stderr)
        return 1
    return 0


def _leaf(exc: BaseException) -> BaseException:
    """The first real error inside task-group wrappers."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return exc


def explain_failure(exc: BaseException, config: KubeletConfiguration) -> str:
    """One line: what failed and how to fix it."""
    from pykubelet.host.ports import port_owner

    e = _leaf(exc)
    if isinstance(e, OSError) and e.errno == errno.EADDRINUSE:
        m = re.search(r"\('([^']*)', (\d+)", str(e))
        port = int(m.group(2)) if m else config.port
        owner = port_owner(port) or "an unknown process"
        flag = {
            config.port: "--port",
            config.healthz_port: "--healthz-port",
            config.read_only_port: "--read-only-port",
        }.get(port, "--port")
        return (
            f"port {port} is already in use by {owner}: stop it, or choose another port with {flag}"
        )
    if isinstance(e, PykubeletError):
        text = str(e)
        hint = ""
        if "client CA" in text or "clientCAFile" in text:
            hint = "; fix: point --client-ca-file at a readable PEM bundle (pykubelet certs ca)"
        elif "tlsCertFile" in text or "private key" in text:
            hint = (
                "; fix: --tls-cert-file and --tls-private-key-file must be readable PEM files "
                "of one certificate and its key"
            )
        return text + hint
    if isinstance(e, PermissionError):
        return f"permission denied on {e.filename}: run as root or fix the file's owner/mode"
    if isinstance(e, OSError):
        where = f" ({e.filename})" if e.filename else ""
        return f"{e.strerror or e}{where}: check the path and the host, then start again"
    return f"unexpected {type(e).__name__}: {e} (run with -v 4 for the traceback)"


async def _run_agent(config: KubeletConfiguration) -> None:
    from pykubelet.agent import Agent

    agent = Agent(config)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, agent.stop)

    async def tell_systemd() -> None:
        await agent.ready.wait()
        sdnotify.notify(f"READY=1\nSTATUS=serving, node {config.node_name}")
        interval = sdnotify.watchdog_interval_s()
        if interval is not None:
            await sdnotify.watchdog_loop(interval)

    notifier = asyncio.create_task(tell_systemd(), name="sd_notify")
    try:
        await agent.run()
    finally:
        notifier.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await notifier
        sdnotify.notify("STOPPING=1")


def images_main(argv: Sequence[str]) -> int:
    """``images import|list|pull|rm``: the process runtime's image store, or with
    ``--container-runtime-endpoint`` the CRI runtime's (containerd's ``k8s.io`` namespace)."""
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
        sp.add_argument(
            "--container-runtime-endpoint",
            default="",
            help="unix:///path/to/containerd.sock: the CRI runtime's images",
        )
    args = p.parse_args(list(argv))
    try:
        return asyncio.run(_images(args))
    except InvalidInput as e:
        print(f"pykubelet images: {e}", file=sys.stderr)
        return 2
    except (PykubeletError, OSError) as e:
        print(f"pykubelet images: {e}", file=sys.stderr)
        return 1


def _image_runtime(args: argparse.Namespace) -> Any:
    """The store ``images`` works on: containerd's over CRI, else the process runtime's."""
    if args.container_runtime_endpoint:
        from pykubelet.runtime.cri import CriRuntime

        return CriRuntime(args.container_runtime_endpoint)
    try:
        runtime_cls = importlib.import_module("pykubelet.runtime.process").ProcessRuntime
    except (ImportError, AttributeError):
        raise PykubeletError("the process runtime is not available") from None
    return runtime_cls(
        Path(args.root_dir), registry_ca_file=getattr(args, "image_registry_ca_file", "")
    )


async def _images(args: argparse.Namespace) -> int:
    runtime = _image_runtime(args)
    try:
        await runtime.start()
        if args.cmd == "import":
            info = await runtime.import_image(Path(args.file), ref=args.ref)
            print(f"imported {', '.join(info.repo_tags) or info.id} ({info.id})")
        elif args.cmd == "pull":
            print(f"pulled {args.ref} ({await _pull_ref(runtime, args)})")
        elif args.cmd == "rm":
            print("\n".join(await _remove_refs(runtime, runtime, args.refs)))
        else:
            for info in await runtime.list_images():
                print(f"{info.id[:19]}  {info.size_bytes:>12}  {' '.join(info.repo_tags)}")
    finally:
        await runtime.aclose()
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


def version_main(argv: Sequence[str]) -> int:
    print(f"pykubelet {__version__}")
    return 0


def completion_main(argv: Sequence[str]) -> int:
    from pykubelet.config.completion import completion_script

    if len(argv) != 1 or argv[0] not in ("bash", "zsh"):
        print("usage: pykubelet completion bash|zsh", file=sys.stderr)
        return 2
    print(completion_script(argv[0], COMMANDS), end="")
    return 0


COMMANDS: dict[str, Callable[[Sequence[str]], int]] = {
    "run": run_main,
    "version": version_main,
    "completion": completion_main,
    "images": images_main,
    "certs": lambda argv: _delegate("pykubelet.security.certs", "certs_main", argv),
    "doctor": lambda argv: _delegate("pykubelet.security.doctor", "doctor_main", argv),
    "client": lambda argv: _delegate("pykubelet.client", "client_main", argv),
}


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help", "help"):
        print(USAGE, end="")
        return 0 if args else 2
    if args[0] == "--version":
        return version_main([])
    command = COMMANDS.get(args[0])
    if command is None:
        import difflib

        close = difflib.get_close_matches(args[0], list(COMMANDS), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        print(
            f"pykubelet: unknown command {args[0]!r}{hint} (pykubelet --help lists them)",
            file=sys.stderr,
        )
        return 2
    return command(args[1:])


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
