"""exec and exec probes through the helper zygote (``Zygote.enter``): the compiled helper's
``pkshim enter`` is forked by the zygote with the exec's pipes, leads its own session, and
reports its pidfd and its command's end. (``test_process_io.py`` runs the common exec tests
with both helpers; these are about what the zygote path must get right.)"""

from __future__ import annotations

import asyncio
import hashlib
import os
import signal
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from pykubelet.runtime import ContainerConfig, StreamIO
from pykubelet.runtime.errors import ExecTimeout
from pykubelet.runtime.process import ProcessRuntime, procs
from pykubelet.runtime.process.shimbin import native_helper_problem
from tests.prereq import require, require_root
from tests.runtime.conftest import BUSYBOX_REF, sandbox_config, wait_for

pytestmark = pytest.mark.root


@pytest.fixture
async def running(
    make_runtime: Callable[..., ProcessRuntime], busybox_tar: Path, tmp_path: Path
) -> tuple[ProcessRuntime, str]:
    """A runtime on the compiled helper (so with a zygote) and a running busybox container."""
    require_root()
    problem = native_helper_problem()
    require(problem is None, f"needs the compiled pkshim (make venv): {problem}")
    rt = make_runtime(helper="native")
    await rt.import_image(busybox_tar)
    sc = sandbox_config(log_directory=str(tmp_path / "logs"))
    sid = await rt.run_pod_sandbox(sc)
    cfg = ContainerConfig(name="c", image=BUSYBOX_REF, command=("sleep", "30"), log_path="c.log")
    cid = await rt.create_container(sid, cfg, sc)
    await rt.start_container(cid)
    assert rt._zygote is not None
    return rt, cid


def _stat(pid: int) -> list[str]:
    """Fields of /proc/PID/stat after the command name: state, ppid, pgrp, session, ..."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def _argv(pid: int) -> list[bytes]:
    return Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[:-1]


def _title(pid: int) -> list[bytes]:
    """The words of its command line (the zygote's children show theirs as one string)."""
    return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").split()


def _live_pids_running(argv: list[bytes]) -> list[int]:
    """Host pids of processes (not zombies) whose command line is ``argv``."""
    found = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                if _argv(int(d)) == argv and _stat(int(d))[0] != "Z":
                    found.append(int(d))
            except (OSError, IndexError):
                continue
    return found


def _zygotes() -> list[int]:
    """The zygotes this test process started (its children titled ``... zygote``)."""
    me = os.getpid()
    kids = Path(f"/proc/{me}/task/{me}/children").read_text().split()
    out = []
    for k in kids:
        try:
            if _title(int(k))[1:] == [b"zygote"]:
                out.append(int(k))
        except (OSError, IndexError):
            continue
    return out


class _Sink:
    def __init__(self) -> None:
        self.data = bytearray()

    async def __call__(self, b: bytes) -> None:
        self.data += b


async def _chunks(*items: bytes) -> AsyncIterator[bytes]:
    for item in items:
        yield item


async def test_exit_codes_signals_and_empty_arguments(running: tuple[ProcessRuntime, str]) -> None:
    rt, cid = running
    assert (await rt.exec_sync(cid, ["sh", "-c", "exit 7"], 10)).exit_code == 7
    # killed by a signal: 128 + the signal, as the shell and the Go kubelet report it
    assert (await rt.exec_sync(cid, ["sh", "-c", "kill -9 $$"], 10)).exit_code == 137
    assert (await rt.exec_sync(cid, ["sh", "-c", "kill -TERM $$"], 10)).exit_code == 143
    out = _Sink()
    code = await rt.exec(cid, ["sh", "-c", "echo before; kill -9 $$"], StreamIO(stdout=out))
    assert (code, bytes(out.data)) == (137, b"before\n")
    # an empty argument stays an argument (the zygote's request counts its fields)
    r = await rt.exec_sync(cid, ["sh", "-c", 'printf "[%s][%s]" "$1" "$2"', "sh", "", "b"], 10)
    assert (r.exit_code, r.stdout) == (0, b"[][b]")
    r = await rt.exec_sync(cid, ["/no/such/command"], 10)
    assert r.exit_code == 127 and b"/no/such/command" in r.stderr, r


async def test_arguments_beyond_a_zygote_request_still_run(
    running: tuple[ProcessRuntime, str],
) -> None:
    """300 kB of arguments do not fit the zygote's 256 KiB request: posix_spawn takes them."""
    rt, cid = running
    big = ["a" * 100_000, "b" * 100_000, "c" * 100_000]
    r = await rt.exec_sync(cid, ["sh", "-c", "echo ${#1} ${#2} ${#3}", "sh", *big], 10)
    assert (r.exit_code, r.stdout) == (0, b"100000 100000 100000\n")
    out = _Sink()
    code = await rt.exec(cid, ["sh", "-c", "echo ${#1}", "sh", *big], StreamIO(stdout=out))
    assert (code, bytes(out.data)) == (0, b"100000\n")


async def test_stdin_reaches_eof_and_no_stdin_is_dev_null(
    running: tuple[ProcessRuntime, str],
) -> None:
    rt, cid = running
    out = _Sink()
    io_ = StreamIO(stdin=_chunks(b"abc", b"def"), stdout=out)
    code = await rt.exec(cid, ["sh", "-c", "cat; echo; echo after-eof"], io_)
    assert (code, bytes(out.data)) == (0, b"abcdef\nafter-eof\n")
    r = await rt.exec_sync(cid, ["readlink", "/proc/self/fd/0"], 10)
    assert r.stdout == b"/dev/null\n"


async def test_several_megabytes_of_stdout_wait_for_a_stalled_client(
    running: tuple[ProcessRuntime, str],
) -> None:
    """Back-pressure: while the client takes nothing, the command is blocked writing (it is
    still there, its output not lost); then all 6 MB arrive intact."""
    rt, cid = running
    release = asyncio.Event()
    got = bytearray()

    async def stalled(data: bytes) -> None:
        got.extend(data)
        await release.wait()

    script = "yes 0123456789abcdef | head -c 6000000; echo done >&2"
    err = _Sink()
    task = asyncio.ensure_future(
        rt.exec(cid, ["sh", "-c", script], StreamIO(stdout=stalled, stderr=err))
    )
    try:
        await wait_for(lambda: len(got) > 0, 10, "the first chunk")
        ps = (await rt.exec_sync(cid, ["ps", "-o", "args"], 10)).stdout.decode()
        assert "head -c 6000000" in ps, ps  # blocked on the full pipe, not finished
        assert err.data == b""
    finally:
        release.set()
    code = await task
    assert (code, bytes(err.data), len(got)) == (0, b"done\n", 6_000_000)
    expected = (b"0123456789abcdef\n" * 352_942)[:6_000_000]
    assert hashlib.sha256(got).hexdigest() == hashlib.sha256(expected).hexdigest()


async def test_a_probe_timeout_kills_the_command_and_its_background_child(
    running: tuple[ProcessRuntime, str],
) -> None:
    rt, cid = running
    script = "sleep 63 & echo $! > /tmp/bg.pid; echo $$ > /tmp/sh.pid; wait"
    with pytest.raises(ExecTimeout):
        await rt.exec_sync(cid, ["sh", "-c", script], 0.5)
    pids = (await rt.exec_sync(cid, ["cat", "/tmp/sh.pid", "/tmp/bg.pid"], 10)).stdout.split()
    assert len(pids) == 2 and all(p.isdigit() for p in pids), pids
    # inside the container, by pid: gone or zombies (its PID 1, sleep, reaps no orphans)
    check = "for p in $(cat /tmp/sh.pid /tmp/bg.pid); do grep State /proc/$p/status; done"

    async def dead() -> bool:
        left = (await rt.exec_sync(cid, ["sh", "-c", check], 10)).stdout.decode()
        return all("zombie" in line for line in left.splitlines())

    await wait_for(dead, 10, "the timed-out exec's shell and background sleep to die")
    assert _live_pids_running([b"sleep", b"63"]) == []


async def test_a_cancelled_session_kills_its_process_group(
    running: tuple[ProcessRuntime, str],
) -> None:
    rt, cid = running
    up = asyncio.Event()

    async def out(_data: bytes) -> None:
        up.set()

    script = "sleep 64 & echo up; wait"
    task = asyncio.ensure_future(rt.exec(cid, ["sh", "-c", script], StreamIO(stdout=out)))
    await asyncio.wait_for(up.wait(), 30)
    # "up" may come before the background sh has exec'd sleep
    await wait_for(lambda: bool(_live_pids_running([b"sleep", b"64"])), 10, "sleep to start")
    (sleeper,) = _live_pids_running([b"sleep", b"64"])
    shell = int(_stat(sleeper)[1])
    helper = int(_stat(shell)[1])
    assert _title(helper)[1:2] == [b"enter"]
    assert int(_stat(helper)[1]) in _zygotes()  # forked by the zygote, not by us
    # the helper leads a session; the command and its background child are in its group
    assert _stat(helper)[2] == _stat(helper)[3] == str(helper)
    assert _stat(shell)[2] == _stat(sleeper)[2] == str(helper)
    helper_id = procs.identity(helper)  # with its start time: no confusion with a new pid
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await wait_for(lambda: not _live_pids_running([b"sleep", b"64"]), 10, "the group to die")
    await wait_for(lambda: not procs.alive(helper_id), 10, "the helper to die")


async def test_the_next_exec_works_after_the_zygote_was_killed(
    running: tuple[ProcessRuntime, str],
) -> None:
    """... and an exec running at that moment goes on: its helper reports to the agent."""
    rt, cid = running
    assert (await rt.exec_sync(cid, ["echo", "one"], 10)).stdout == b"one\n"
    go = asyncio.Event()

    async def stdin() -> AsyncIterator[bytes]:
        await go.wait()
        yield b"hi\n"

    out = _Sink()
    running_exec = asyncio.ensure_future(
        rt.exec(
            cid, ["sh", "-c", "read x; echo got $x; exit 3"], StreamIO(stdin=stdin(), stdout=out)
        )
    )
    script = [b"sh", b"-c", b"read x; echo got $x; exit 3"]
    await wait_for(lambda: bool(_live_pids_running(script)), 10, "the exec to run")
    (zygote,) = _zygotes()
    os.kill(zygote, signal.SIGKILL)
    await wait_for(lambda: zygote not in _zygotes(), 10, "the zygote to go")
    go.set()
    assert (await running_exec, bytes(out.data)) == (3, b"got hi\n")
    r = await rt.exec_sync(cid, ["echo", "two"], 10)
    assert (r.exit_code, r.stdout) == (0, b"two\n")
    assert len(_zygotes()) == 1 and zygote not in _zygotes()


async def test_no_fd_of_the_agent_or_the_zygote_reaches_the_command(
    running: tuple[ProcessRuntime, str],
) -> None:
    rt, cid = running
    leak = os.open("/dev/null", os.O_RDONLY)  # inheritable, in the agent
    os.set_inheritable(leak, True)
    try:
        r = await rt.exec_sync(cid, ["ls", "/proc/self/fd"], 10)
        assert sorted(r.stdout.split()) == [b"0", b"1", b"2", b"3"], r.stdout  # 3: ls's dir
        out = _Sink()
        io_ = StreamIO(stdin=_chunks(b"x"), stdout=out)
        code = await rt.exec(cid, ["ls", "/proc/self/fd"], io_)
        assert (code, sorted(bytes(out.data).split())) == (0, [b"0", b"1", b"2", b"3"])
    finally:
        os.close(leak)
