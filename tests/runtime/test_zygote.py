"""The helper zygote: helpers launched by one long-lived ``pkshim zygote`` (no exec each)."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from pykubelet.runtime.errors import RuntimeUnavailable
from pykubelet.runtime.process import procs
from pykubelet.runtime.process.shimbin import native_helper, native_helper_problem
from pykubelet.runtime.process.zygote import Zygote, encode_request, parse_report
from tests.prereq import require


@pytest.fixture
async def zygote(tmp_path: Path) -> AsyncIterator[tuple[Zygote, list[int]]]:
    problem = native_helper_problem()
    require(problem is None, f"needs the compiled pkshim (make venv): {problem}")
    binary = tmp_path / "bin" / "pkshim"  # a copy of our own: its zygote is told apart by path
    binary.parent.mkdir()
    shutil.copy2(native_helper(), binary)
    z = Zygote(str(binary))
    started: list[int] = []  # helpers to stop by pid, even when the test fails
    try:
        yield z, started
    finally:
        z.close()
        for pid in started:
            procs.signal_process(procs.identity(pid), signal.SIGKILL)


def _zygote_pids(binary_dir: Path) -> set[int]:
    out = set()
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                cmd = Path(f"/proc/{d}/cmdline").read_bytes()
            except OSError:
                continue
            argv = cmd.replace(b"\0", b" ").split()
            if (
                argv[:1]
                and argv[0].startswith(str(binary_dir).encode())
                and argv[1:2] == [b"zygote"]
            ):
                out.add(int(d))
    return out


def _cmdline(pid: int) -> str:
    return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode().strip()


async def test_pause_is_forked_in_its_own_session_and_titled(
    zygote: tuple[Zygote, list[int]], tmp_path: Path
) -> None:
    z, started = zygote
    binary = str(next((tmp_path / "bin").iterdir()))
    (pid,) = await z.launch([binary, "pause"])
    started.append(pid)
    assert procs.alive(procs.identity(pid))
    assert os.getsid(pid) == pid  # a session of its own: the agent's signals never reach it
    assert _cmdline(pid).startswith(f"{binary} pause")


async def test_run_gets_the_requested_environment_and_outlives_the_zygote(
    zygote: tuple[Zygote, list[int]], tmp_path: Path
) -> None:
    z, started = zygote
    binary = str(next((tmp_path / "bin").iterdir()))
    state = tmp_path / "shim"
    state.mkdir()
    log = tmp_path / "c.log"
    env = {"PATH": os.environ["PATH"], "GREETING": "hello from the zygote"}
    cmd = 'echo "$GREETING"; exec sleep 60'
    shim, child = await z.launch(
        [binary, "run", "-s", str(state), "-l", str(log), "--", "sh", "-c", cmd], env
    )
    started += [child, shim]
    deadline = asyncio.get_running_loop().time() + 10
    while "hello from the zygote" not in (log.read_text() if log.exists() else ""):
        assert asyncio.get_running_loop().time() < deadline, "the container never logged"
        await asyncio.sleep(0.02)
    z.close()  # the zygote exits; what it launched keeps running
    assert procs.alive(procs.identity(shim)) and procs.alive(procs.identity(child))
    assert not _zygote_pids(tmp_path / "bin")


async def test_a_killed_zygote_is_replaced_on_the_next_launch(
    zygote: tuple[Zygote, list[int]], tmp_path: Path
) -> None:
    z, started = zygote
    binary = str(next((tmp_path / "bin").iterdir()))
    started += await z.launch([binary, "pause"])
    (first,) = _zygote_pids(tmp_path / "bin")
    os.kill(first, signal.SIGKILL)
    await procs.wait_exit(procs.identity(first), 5)
    started += await z.launch([binary, "pause"])
    assert _zygote_pids(tmp_path / "bin") - {first}


async def test_a_helper_that_fails_reports_why(
    zygote: tuple[Zygote, list[int]], tmp_path: Path
) -> None:
    z, _ = zygote
    binary = str(next((tmp_path / "bin").iterdir()))
    with pytest.raises(RuntimeUnavailable, match="helper run failed: ERR chdir state dir"):
        await z.launch(
            [
                binary,
                "run",
                "-s",
                str(tmp_path / "missing"),
                "-l",
                str(tmp_path / "l"),
                "--",
                "true",
            ]
        )
    with pytest.raises(
        RuntimeUnavailable, match="helper pause failed: ERR helper died before it was ready"
    ):
        await z.launch([binary, "pause", "-x"])  # usage error: exits before any report
    with pytest.raises(
        RuntimeUnavailable,
        match="helper enter failed: ERR enter needs a report socket and 3 stdio fds",
    ):
        await z.launch([binary, "enter", "-t", "1", "--", "true"])  # no stdio: Zygote.enter has
    with pytest.raises(RuntimeUnavailable, match="only pause, run and enter are launched"):
        await z.launch([binary, "init", str(tmp_path / "spec")])


async def test_oversized_requests_and_nul_bytes_are_refused(
    zygote: tuple[Zygote, list[int]], tmp_path: Path
) -> None:
    z, _ = zygote
    binary = str(next((tmp_path / "bin").iterdir()))
    with pytest.raises(RuntimeUnavailable, match="exceed 256 KiB"):
        await z.launch([binary, "pause"], {"BIG": "x" * 300_000})
    with pytest.raises(RuntimeUnavailable, match="NUL"):
        encode_request([binary, "pause"], {"A": "b\0c"})


def test_reports_are_parsed_strictly() -> None:
    assert parse_report("OK 12 34", "run") == [12, 34]
    with pytest.raises(RuntimeUnavailable, match="helper pause failed: ERR unshare"):
        parse_report("ERR unshare: Operation not permitted", "pause")
