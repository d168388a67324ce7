"""exec_sync and the streaming side (exec, attach, port-forward) of the process runtime.

exec runs ``pkshim enter -t <pid> …`` with the container's env: it joins the container's
cgroups and namespaces (so its root), then applies the container's capability set, groups, uid,
no_new_privs and working directory, as init did. The compiled helper is forked by its zygote
(``Zygote.enter``: no exec, the event loop never blocks); the Python fallback helper, which has
no zygote, and exec with a TTY are started by ``posix_spawn`` (``spawn``) and asyncio's
subprocess support respectively. Both launch paths give one ``Child``.
attach talks to the shim's ``attach.sock`` (frames: type, 4-byte length, payload), so it keeps
working after an agent restart. port-forward creates the socket in a thread that has entered the
sandbox's network namespace, then connects from the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import fcntl
import os
import signal
import socket
import struct
import termios
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from pykubelet.runtime.errors import ContainerNotRunning, ExecTimeout, RuntimeUnavailable
from pykubelet.runtime.process import procs
from pykubelet.runtime.process.records import ContainerRecord, SandboxRecord
from pykubelet.runtime.process.security import capability_set
from pykubelet.runtime.process.spawn import Child, pump_in, pump_out, read_all, spawn
from pykubelet.runtime.process.zygote import RequestTooLarge, Zygote
from pykubelet.runtime.protocol import PortConnection
from pykubelet.runtime.types import ExecResult, StreamIO, TerminalSize

if TYPE_CHECKING:
    from pykubelet.runtime.cgroups import CgroupLayout
    from pykubelet.runtime.process.layout import RuntimeLayout

__all__ = ["ExecMixin"]

_CLONE_NEWNET = 0x40000000
# <asm-generic/ioctls.h>; Python's termios lacks both
_TIOCSPTLCK = 0x40045431  # _IOW('T', 0x31, int): lock/unlock the slave
_TIOCGPTPEER = 0x5441  # open the slave from its master (Linux 4.13), no path lookup


class _Conn:
    """A ``PortConnection`` over an asyncio stream."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._r, self._w = reader, writer

    async def read(self, n: int = 65536) -> bytes:
        return await self._r.read(n)

    async def write(self, data: bytes) -> None:
        self._w.write(data)
        await self._w.drain()

    async def close_write(self) -> None:
        if self._w.can_write_eof():
            self._w.write_eof()

    async def close(self) -> None:
        self._w.close()
        with contextlib.suppress(OSError):
            await self._w.wait_closed()


def _set_winsize(fd: int, size: TerminalSize) -> None:
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", size.height, size.width, 0, 0))


def _socket_in_netns(netns_path: str) -> socket.socket:
    """Create a TCP socket inside the given network namespace (in a throwaway thread)."""
    result: list[socket.socket | BaseException] = []

    def work() -> None:
        libc = ctypes.CDLL(None, use_errno=True)
        own = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
        try:
            target = os.open(netns_path, os.O_RDONLY)
            try:
                if libc.setns(target, _CLONE_NEWNET) != 0:
                    raise OSError(ctypes.get_errno(), "setns " + netns_path)
                result.append(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            finally:
                os.close(target)
                if libc.setns(own, _CLONE_NEWNET) != 0:
                    # this thread must not live on in the pod's namespace; it ends here anyway
                    pass
        except BaseException as e:
            result.append(e)
        finally:
            os.close(own)

    t = threading.Thread(target=work, name="netns-socket")
    t.start()
    t.join()
    r = result[0]
    if isinstance(r, BaseException):
        raise RuntimeUnavailable(f"cannot enter the pod network namespace: {r}")
    return r


_ENTER_ARGS_KEPT = 1024


@dataclass(frozen=True, slots=True)
class _EnterArgs:
    """The ``pkshim enter`` options of one container (its init pid, cgroups, capabilities,
    identity): fixed for its life, so built on its first exec, not on every one (they were a
    tenth of a millisecond of each ``kubectl exec``; docs/performance.md). Each exec still
    checks that the container's shim is the very process recorded."""

    rec: ContainerRecord
    shim: procs.ProcessIdentity
    argv: tuple[str, ...]


async def _enter_argv(host: ExecMixin, rec: ContainerRecord, pid: int) -> tuple[str, ...]:
    argv = [*await host._helper(), "enter", "-t", str(pid), "-w", rec.working_dir]
    if rec.cgroup_path:
        for procs_file in host.cgroups.procs_files(rec.cgroup_path):
            argv += ["-C", procs_file]
    sec = rec.config.security
    argv += ["-c", f"{sum(1 << c for c in capability_set(sec)):x}"]
    if rec.uid is not None:
        groups = ",".join(str(g) for g in rec.groups)
        argv += ["-u", str(rec.uid), "-g", str(rec.gid or 0), "-G", groups]
    if sec.no_new_privs:
        argv.append("-n")
    return tuple(argv)


class ExecMixin:
    """Mixed into ``ProcessRuntime``; relies on its record accessors (declared here for the
    type checker only: ``ProcessRuntime`` defines them)."""

    if TYPE_CHECKING:
        layout: RuntimeLayout
        _zygote: Zygote | None

        @property
        def cgroups(self) -> CgroupLayout: ...

        def _container(self, container_id: str) -> ContainerRecord: ...

        def _sandbox(self, sandbox_id: str) -> SandboxRecord: ...

        def _netns_path(self, rec: SandboxRecord) -> str: ...

        def _identities(
            self, d: Path
        ) -> tuple[procs.ProcessIdentity | None, procs.ProcessIdentity | None]: ...

        async def _helper(self) -> list[str]: ...

    async def _exec_command(
        self, container_id: str, cmd: Sequence[str], *, tty: bool = False
    ) -> tuple[list[str], dict[str, str], str | None]:
        """The argv, environment and cwd of an exec. With ``tty``, in a container with its own
        mount namespace, the helper makes the terminal (already on stdin) the controlling
        terminal of a session inside the container (``-T``)."""
        if not cmd:
            raise ContainerNotRunning("exec: an empty command")
        rec = self._container(container_id)
        known: dict[str, _EnterArgs] = self.__dict__.setdefault("_enter_args", {})
        enter = known.get(container_id)
        if enter is None or enter.rec is not rec:
            shim, pid = self._identities(self.layout.container_dir(container_id))
            if not procs.alive(shim) or pid is None:
                raise ContainerNotRunning(f"container {container_id[:12]} is not running")
            assert shim is not None
            if not rec.namespaces:
                return list(cmd), dict(rec.env), rec.working_dir
            enter = _EnterArgs(rec, shim, await _enter_argv(self, rec, pid[0]))
            if len(known) >= _ENTER_ARGS_KEPT:
                known.clear()  # containers come and go: keep this bounded, not exact
            known[container_id] = enter
        elif not procs.alive(enter.shim):
            del known[container_id]
            raise ContainerNotRunning(f"container {container_id[:12]} is not running")
        tail = ("-T", "--") if tty else ("--",)
        return [*enter.argv, *tail, *cmd], dict(rec.env), None

    async def _start_enter(self, argv: Sequence[str], env: dict[str, str], *, stdin: bool) -> Child:
        """Start ``pkshim enter``: forked by the zygote when the helper is the compiled one,
        else (the Python helper, or arguments beyond a zygote request) spawned."""
        if self._zygote is not None:
            with contextlib.suppress(RequestTooLarge):
                return await self._zygote.enter(argv, env, stdin=stdin)
        return spawn(argv, env, stdin=stdin)

    async def exec_sync(
        self, container_id: str, cmd: Sequence[str], timeout_s: float | None = None
    ) -> ExecResult:
        argv, env, cwd = await self._exec_command(container_id, cmd)
        if cwd is not None:  # a container without namespaces: the command itself, in its cwd
            return await _exec_sync_subprocess(container_id, argv, env, cwd, timeout_s)
        child = await self._start_enter(argv, env, stdin=False)
        try:
            async with asyncio.timeout(timeout_s):
                # the output first: its end comes with the command's, and the helper's report
                # is then read in one go (``ZygoteChild``)
                out, err = await asyncio.gather(read_all(child.stdout), read_all(child.stderr))
                rc = await child.wait()
        except TimeoutError:
            raise ExecTimeout(f"exec in {container_id[:12]} timed out after {timeout_s}s") from None
        finally:
            try:
                await child.kill()
            finally:
                child.close()
        return ExecResult(exit_code=_code(rc), stdout=out, stderr=err)

    async def exec(self, container_id: str, cmd: Sequence[str], io: StreamIO) -> int:
        if io.tty:
            argv, env, cwd = await self._exec_command(container_id, cmd, tty=True)
            return await _exec_tty(argv, env, cwd, io, self._pty_root(container_id))
        argv, env, cwd = await self._exec_command(container_id, cmd)
        if cwd is not None:
            return await _exec_subprocess(argv, env, cwd, io)
        child = await self._start_enter(argv, env, stdin=io.stdin is not None)
        failed: RuntimeUnavailable | None = None
        try:
            async with asyncio.TaskGroup() as tg:
                feeder = None
                if io.stdin is not None:
                    feeder = tg.create_task(pump_in(io.stdin, child))
                outputs = (
                    tg.create_task(pump_out(child.stdout, io.stdout)),
                    tg.create_task(pump_out(child.stderr, io.stderr)),
                )
                try:
                    # the output first: its end comes with the command's, and the helper's
                    # report is then read in one go (``ZygoteChild``)
                    await asyncio.wait(outputs)
                    await child.wait()
                except RuntimeUnavailable as e:  # the helper could not start: raised as is,
                    failed = e  # not in the task group's ExceptionGroup
                if feeder is not None:
                    feeder.cancel()
        finally:
            try:
                await child.kill()
            finally:
                child.close()
        if failed is not None:
            raise failed
        return _code(child.returncode)

    def _pty_root(self, container_id: str) -> str | None:
        """Where the exec's terminal comes from: the container's root (``/proc/PID/root``) when
        it runs in a mount namespace of its own, ``None`` (the host's devpts) otherwise."""
        rec = self._container(container_id)
        if not rec.namespaces:
            return None
        _shim, pid = self._identities(self.layout.container_dir(container_id))
        return f"/proc/{pid[0]}/root" if pid is not None else None

    async def attach(self, container_id: str, io: StreamIO) -> None:
        rec = self._container(container_id)
        sock = self.layout.shim_dir(container_id) / "attach.sock"
        shim, _pid = self._identities(self.layout.container_dir(container_id))
        if not procs.alive(shim) or not sock.exists():
            raise ContainerNotRunning(f"container {container_id[:12]} is not running")
        # connect through an open directory fd: the absolute path may exceed sun_path
        dfd = os.open(sock.parent, os.O_RDONLY | os.O_DIRECTORY)
        try:
            reader, writer = await asyncio.open_unix_connection(f"/proc/self/fd/{dfd}/attach.sock")
        finally:
            os.close(dfd)

        async def send(kind: int, payload: bytes) -> None:
            writer.write(struct.pack(">BI", kind, len(payload)) + payload)
            await writer.drain()

        async def pump_in() -> None:
            if io.stdin is None or not rec.config.stdin:
                return
            async for chunk in io.stdin:
                for i in range(0, len(chunk), 65536):
                    await send(0, chunk[i : i + 65536])
            if rec.config.stdin_once:
                await send(1, b"")

        async def pump_resize() -> None:
            if io.resize is None:
                return
            async for size in io.resize:
                await send(2, struct.pack(">HH", size.width, size.height))

        try:
            async with asyncio.TaskGroup() as tg:
                side = [tg.create_task(pump_in()), tg.create_task(pump_resize())]
                while True:
                    try:
                        head = await reader.readexactly(5)
                        kind, n = struct.unpack(">BI", head)
                        data = await reader.readexactly(n)
                    except (asyncio.IncompleteReadError, ConnectionError):
                        break
                    target = io.stdout if kind == 1 or rec.config.tty else io.stderr
                    if target is not None:
                        await target(data)
                for t in side:
                    t.cancel()
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()

    async def port_forward(self, sandbox_id: str, port: int) -> PortConnection:
        if not 0 < port < 65536:
            raise ContainerNotRunning(f"port_forward: invalid port {port}")
        rec = self._sandbox(sandbox_id)
        netns = self._netns_path(rec)
        if not netns:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            return _Conn(reader, writer)
        sock = await asyncio.to_thread(_socket_in_netns, netns)
        sock.setblocking(False)
        try:
            await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
        except OSError:
            sock.close()
            raise
        reader, writer = await asyncio.open_connection(sock=sock)
        return _Conn(reader, writer)


async def _exec_sync_subprocess(
    container_id: str, argv: list[str], env: dict[str, str], cwd: str, timeout_s: float | None
) -> ExecResult:
    """exec_sync of a container without namespaces (its command may be relative to its PATH
    and runs in its working directory, which ``posix_spawn`` cannot set)."""
    proc = await _spawn_plain(argv, env, cwd, stdin=asyncio.subprocess.DEVNULL)
    try:
        async with asyncio.timeout(timeout_s):
            out, err = await proc.communicate()
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        await proc.wait()
        raise ExecTimeout(f"exec in {container_id[:12]} timed out after {timeout_s}s") from None
    return ExecResult(exit_code=_code(proc.returncode), stdout=out, stderr=err)


async def _exec_subprocess(argv: list[str], env: dict[str, str], cwd: str, io: StreamIO) -> int:
    """exec of a container without namespaces (see ``_exec_sync_subprocess``)."""
    stdin = asyncio.subprocess.PIPE if io.stdin else asyncio.subprocess.DEVNULL
    proc = await _spawn_plain(argv, env, cwd, stdin=stdin)
    try:
        async with asyncio.TaskGroup() as tg:
            feeder = None
            if io.stdin is not None and proc.stdin is not None:
                feeder = tg.create_task(_feed(io.stdin, proc.stdin))
            assert proc.stdout is not None and proc.stderr is not None
            tg.create_task(_drain(proc.stdout, io.stdout))
            tg.create_task(_drain(proc.stderr, io.stderr))
            await proc.wait()
            if feeder is not None:
                feeder.cancel()
    finally:
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            await proc.wait()
    return _code(proc.returncode)


async def _spawn_plain(
    argv: list[str], env: dict[str, str], cwd: str, *, stdin: int
) -> asyncio.subprocess.Process:
    """The command in its own session (killed as a group), output piped back."""
    return await asyncio.create_subprocess_exec(
        *argv,
        stdin=stdin,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
        cwd=cwd,
        start_new_session=True,
    )


def _code(rc: int | None) -> int:
    if rc is None:
        return -1
    return 128 - rc if rc < 0 else rc


async def _feed(source: AsyncIterator[bytes], sink: asyncio.StreamWriter) -> None:
    try:
        async for chunk in source:
            sink.write(chunk)
            await sink.drain()
    except (ConnectionError, BrokenPipeError):
        return
    finally:
        with contextlib.suppress(OSError):
            sink.close()


async def _drain(
    src: asyncio.StreamReader, sink: Callable[[bytes], Awaitable[None]] | None
) -> None:
    while chunk := await src.read(65536):
        if sink is not None:
            await sink(chunk)


def open_pty(container_root: str | None) -> tuple[int, int]:
    """A (master, slave) terminal pair. For a container (``container_root`` is its
    ``/proc/PID/root``) it comes from the container's own devpts instance, so that inside it the
    slave is ``/dev/pts/N`` of its ``/dev/pts`` and ``ttyname()`` (``tty``, shells' job control)
    finds it; a terminal of the host's devpts has no name there. Containers started before the
    runtime mounted a devpts in them (no ``dev/pts/ptmx``) get a host terminal, as before."""
    ptmx = f"{container_root}/dev/pts/ptmx" if container_root else ""
    if not ptmx or not os.path.exists(ptmx):
        return os.openpty()
    master = os.open(ptmx, os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC)
    try:
        fcntl.ioctl(master, _TIOCSPTLCK, struct.pack("i", 0))  # unlockpt()
        slave = fcntl.ioctl(master, _TIOCGPTPEER, os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC)
    except OSError:
        os.close(master)
        raise
    return master, slave


async def _exec_tty(
    argv: list[str], env: dict[str, str], cwd: str | None, io: StreamIO, root: str | None
) -> int:
    try:
        master, slave = open_pty(root)
    except OSError as exc:
        raise RuntimeUnavailable(f"exec: cannot allocate a terminal: {exc}") from exc

    def ctty() -> None:
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)

    try:
        proc = await asyncio.create_subprocess_exec(
            *argv,
            stdin=slave,
            stdout=slave,
            stderr=slave,
            env=env,
            cwd=cwd,
            start_new_session=True,
            # in a container the helper makes it the ctty of a session inside (enter -T)
            preexec_fn=None if root else ctty,
        )
    finally:
        os.close(slave)
    loop = asyncio.get_running_loop()
    os.set_blocking(master, False)
    out_q: asyncio.Queue[bytes] = asyncio.Queue()

    def readable() -> None:
        try:
            data = os.read(master, 65536)
        except BlockingIOError:
            return
        except OSError:
            data = b""  # EIO: every slave end is closed
        if not data:
            loop.remove_reader(master)
        out_q.put_nowait(data)

    loop.add_reader(master, readable)

    async def pump_out() -> None:
        while data := await out_q.get():
            if io.stdout is not None:
                await io.stdout(data)

    async def pump_in() -> None:
        if io.stdin is None:
            return
        async for chunk in io.stdin:
            view = memoryview(chunk)
            while view:
                try:
                    n = os.write(master, view)
                    view = view[n:]
                except BlockingIOError:
                    await asyncio.sleep(0.005)

    async def pump_resize() -> None:
        if io.resize is None:
            return
        async for size in io.resize:
            _set_winsize(master, size)

    try:
        async with asyncio.TaskGroup() as tg:
            side = [tg.create_task(pump_in()), tg.create_task(pump_resize())]
            out = tg.create_task(pump_out())
            await proc.wait()
            await out
            for t in side:
                t.cancel()
    finally:
        loop.remove_reader(master)
        os.close(master)
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            await proc.wait()
    return _code(proc.returncode)
