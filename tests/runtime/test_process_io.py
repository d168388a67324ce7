"""Logs (CRI format, P splits, rotation), images (import, whiteouts, unsafe archives, overlay
isolation), exec (exit codes, stdin/stdout, tty), attach and port-forward."""

from __future__ import annotations

import asyncio
import gzip
import io
import json
import tarfile
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Unpack

import pytest

from pykubelet.core.errors import InvalidInput
from pykubelet.logs import encode_records, parse_record
from pykubelet.runtime import (
    ContainerConfig,
    ContainerState,
    StreamIO,
    TerminalSize,
)
from pykubelet.runtime.errors import ContainerNotRunning
from pykubelet.runtime.process import ProcessRuntime, normalize_ref
from tests.prereq import require_root
from tests.runtime.conftest import (
    BUSYBOX_REF,
    ContainerOptions,
    sandbox_config,
    wait_for,
    wait_state,
)

pytestmark = pytest.mark.root


@pytest.fixture(params=["native", "python"])
async def rt(
    request: pytest.FixtureRequest, make_runtime: Callable[..., ProcessRuntime], busybox_tar: Path
) -> ProcessRuntime:
    """Both helpers: the C one and the Python fallback must write the same logs and streams."""
    require_root()
    runtime = make_runtime(
        container_log_max_size_bytes=64 * 1024, container_log_max_files=3, helper=request.param
    )
    await runtime.import_image(busybox_tar)
    return runtime


def _cfg(script: str, name: str = "c", **kw: Unpack[ContainerOptions]) -> ContainerConfig:
    return ContainerConfig(
        name=name, image=BUSYBOX_REF, command=("sh", "-c", script), log_path=f"{name}/0.log", **kw
    )


async def _run_to_exit(
    rt: ProcessRuntime, tmp_path: Path, script: str, **kw: Unpack[ContainerOptions]
) -> Path:
    sc = sandbox_config(log_directory=str(tmp_path / "logs"))
    sid = await rt.run_pod_sandbox(sc)
    cid = await rt.create_container(sid, _cfg(script, **kw), sc)
    await rt.start_container(cid)
    await wait_state(rt, cid, ContainerState.EXITED)
    return Path((await rt.container_status(cid)).log_path)


# ---------------------------------------------------------------------- logs


async def test_logs_are_cri_records_with_long_lines_split(
    rt: ProcessRuntime, tmp_path: Path
) -> None:
    script = "echo out; echo err >&2; head -c 40000 /dev/zero | tr '\\0' x; echo; printf end"
    log = await _run_to_exit(rt, tmp_path, script)
    records = [parse_record(line) for line in log.read_bytes().splitlines()]
    out = [r for r in records if r.stream == "stdout"]
    assert [r.stream for r in records if r.message == b"err"] == ["stderr"]
    joined = b"".join(r.content for r in out)
    assert joined == b"out\n" + b"x" * 40000 + b"\nend"
    long = [r for r in out if r.message.startswith(b"x")]
    assert [(len(r.message), r.partial) for r in long] == [
        (16384, True),
        (16384, True),
        (7232, False),
    ]
    assert out[-1].partial and out[-1].message == b"end"
    # the shim and the shared Python codec write the same bytes for the same record
    first = log.read_bytes().splitlines(keepends=True)[0]
    rec = parse_record(first)
    assert encode_records(rec.stream, rec.content, rec.timestamp_ns) == first


async def test_log_rotation_keeps_max_files(rt: ProcessRuntime, tmp_path: Path) -> None:
    # 64 KiB per file, 3 files: write ~400 KiB in ~100-byte lines
    pad = "y" * 80
    script = f"seq 0 3999 | sed 's/^/line-/; s/$/-{pad}/'"
    log = await _run_to_exit(rt, tmp_path, script)
    files = sorted(p.name for p in log.parent.iterdir())
    assert len(files) == 3, files
    assert "0.log" in files and all(f.startswith("0.log.") for f in files if f != "0.log")
    stamp = next(f for f in files if f != "0.log").split(".", 2)[2]
    assert len(stamp.split(".")[0]) == len("YYYYMMDD-hhmmss")
    for f in files:
        data = (log.parent / f).read_bytes()
        assert len(data) <= 64 * 1024
        for line in data.splitlines():
            parse_record(line)
    assert b"line-3999-" in log.read_bytes()


async def test_the_shim_counts_a_rotation_once_plain_or_gzipped(
    rt: ProcessRuntime, tmp_path: Path
) -> None:
    """While the agent gzips rotation B, both B and B.gz exist (and its B.tmp before): the
    shim's pruning counts B once and leaves the .tmp to the agent."""
    sc = sandbox_config(log_directory=str(tmp_path / "logs"))
    sid = await rt.run_pod_sandbox(sc)
    script = "seq 0 999 | sed 's/^/line-/; s/$/-" + "y" * 80 + "/'"  # ~100 KiB: one rotation
    cid = await rt.create_container(sid, _cfg(script), sc)
    log = Path((await rt.container_status(cid)).log_path)
    log.parent.mkdir(parents=True, exist_ok=True)
    for name in ("0.log.20231114-221300.gz", "0.log.20231114-221301", "0.log.20231114-221301.gz"):
        (log.parent / name).write_bytes(b"")
    (log.parent / "0.log.20231114-221301.tmp").write_bytes(b"")
    await rt.start_container(cid)
    await wait_state(rt, cid, ContainerState.EXITED)
    files = sorted(p.name for p in log.parent.iterdir())
    # max files 3: the current file and two rotations, the oldest (...300) pruned
    assert files[:4] == [
        "0.log",
        "0.log.20231114-221301",
        "0.log.20231114-221301.gz",
        "0.log.20231114-221301.tmp",
    ]
    assert len(files) == 5 and files[4].startswith("0.log.20"), files  # the shim's rotation


@pytest.mark.parametrize("helper", ["native", "python"])
async def test_rotated_logs_are_gzipped_but_the_newest_as_upstream(
    helper: str, make_runtime: Callable[..., ProcessRuntime], busybox_tar: Path, tmp_path: Path
) -> None:
    """The shim renames, the agent's periodic pass gzips behind it: the current file, the
    newest rotation plain, older ones gzipped, at most 4 files, and the kept lines are the
    last ones written, each once, in order."""
    require_root()
    rt = make_runtime(
        container_log_max_size_bytes=16 * 1024,
        container_log_max_files=4,
        log_rotate_interval_s=0.05,
        helper=helper,
    )
    await rt.import_image(busybox_tar)
    await rt.start()  # starts the periodic pass
    try:
        # ~100-byte lines, 2000 of them: a dozen rotations, several in one second
        log = await _run_to_exit(
            rt, tmp_path, "seq 0 1999 | sed 's/^/line-/; s/$/-" + "z" * 80 + "/'"
        )

        def layout() -> tuple[list[str], list[str]]:
            rotated = sorted(p.name for p in log.parent.iterdir() if p.name != "0.log")
            return [f for f in rotated if f.endswith(".gz")], [
                f for f in rotated if not f.endswith(".gz")
            ]

        await wait_for(lambda: len(layout()[1]) == 1, 10, "one plain rotation left")
        gzipped, plain = layout()
        assert len(gzipped) == 2, gzipped  # 4 files: the current one and three rotations
        stamps = [f.removeprefix("0.log.").removesuffix(".gz") for f in gzipped + plain]
        assert all(len(s) == len("YYYYMMDD-hhmmss") and s[8] == "-" for s in stamps), stamps
        assert stamps == sorted(stamps), stamps  # the plain one is the newest
        data = b"".join(gzip.decompress((log.parent / f).read_bytes()) for f in gzipped)
        data += (log.parent / plain[0]).read_bytes() + log.read_bytes()
        numbers = [int(parse_record(x).message.split(b"-")[1]) for x in data.splitlines()]
        assert numbers == list(range(numbers[0], 2000))
        assert numbers[0] > 0  # older rotations were deleted: the count is bounded
        assert await rt.rotate_logs() == 0  # nothing left to do; the layout stays
        assert layout() == (gzipped, plain)
    finally:
        await rt.aclose()


async def test_arguments_keep_tabs_newlines_and_backslashes(
    rt: ProcessRuntime, tmp_path: Path
) -> None:
    args = ("a\tb", "line1\nline2", "back\\slash", "")
    sc = sandbox_config(log_directory=str(tmp_path / "logs"))
    sid = await rt.run_pod_sandbox(sc)
    cfg = ContainerConfig(
        name="c", image=BUSYBOX_REF, command=("printf", "[%s]"), args=args, log_path="c/0.log"
    )
    cid = await rt.create_container(sid, cfg, sc)
    await rt.start_container(cid)
    await wait_state(rt, cid, ContainerState.EXITED)
    records = [parse_record(x) for x in _read(Path((await rt.container_status(cid)).log_path))]
    assert b"".join(r.content for r in records) == b"[a\tb][line1\nline2][back\\slash][]"


def _read(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines()


# ---------------------------------------------------------------------- images


def test_normalize_ref() -> None:
    assert normalize_ref("busybox") == "docker.io/library/busybox:latest"
    assert normalize_ref("library/busybox:1") == "docker.io/library/busybox:1"
    assert normalize_ref("me/app") == "docker.io/me/app:latest"
    assert normalize_ref("localhost/busybox:1.35") == "localhost/busybox:1.35"
    assert normalize_ref("registry:5000/x") == "registry:5000/x:latest"
    with pytest.raises(InvalidInput):
        normalize_ref("Bad Ref")


def _tar(members: list[tuple[str, bytes | None, str]]) -> bytes:
    """(name, data or None for dir, symlink target or '')."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as t:
        for name, data, link in members:
            info = tarfile.TarInfo(name)
            if link:
                info.type, info.linkname = tarfile.SYMTYPE, link
            elif data is None:
                info.type, info.mode = tarfile.DIRTYPE, 0o755
            else:
                info.size = len(data)
            t.addfile(info, io.BytesIO(data) if data is not None else None)
    return raw.getvalue()


def _docker_archive(path: Path, layers: list[bytes], tag: str = "localhost/layered:1") -> Path:
    config = json.dumps({"config": {"Cmd": ["sh"], "Env": ["A=1"]}}).encode()
    files: list[tuple[str, bytes | None, str]] = [("config.json", config, "")]
    names = []
    for i, layer in enumerate(layers):
        files.append((f"l{i}/layer.tar", layer, ""))
        names.append(f"l{i}/layer.tar")
    manifest = [{"Config": "config.json", "RepoTags": [tag], "Layers": names}]
    files.append(("manifest.json", json.dumps(manifest).encode(), ""))
    path.write_bytes(_tar(files))
    return path


async def test_docker_archive_with_whiteouts(rt: ProcessRuntime, tmp_path: Path) -> None:
    base = _tar(
        [
            ("etc", None, ""),
            ("etc/a", b"a", ""),
            ("etc/b", b"b", ""),
            ("opq", None, ""),
            ("opq/old", b"old", ""),
        ]
    )
    top = _tar([("etc/.wh.a", b"", ""), ("opq/.wh..wh..opq", b"", ""), ("opq/new", b"new", "")])
    info = await rt.import_image(_docker_archive(tmp_path / "img.tar", [base, top]))
    assert info.repo_tags == ("localhost/layered:1",) and info.config_env == ("A=1",)
    root = Path(info.rootfs_path)
    assert sorted(p.name for p in (root / "etc").iterdir()) == ["b"]
    assert sorted(p.name for p in (root / "opq").iterdir()) == ["new"]
    assert (await rt.image_status("localhost/layered:1")) == info
    assert info.id in {i.id for i in await rt.list_images()}


@pytest.mark.parametrize(
    "members",
    [
        [("../escape", b"x", "")],
        [("/abs", b"x", "")],
        [("link", None, "/tmp"), ("link/owned", b"x", "")],
    ],
    ids=["dotdot", "absolute", "through-symlink"],
)
async def test_unsafe_layers_are_refused(
    rt: ProcessRuntime, tmp_path: Path, members: list[tuple[str, bytes | None, str]]
) -> None:
    with pytest.raises(InvalidInput, match="image layer"):
        await rt.import_image(_docker_archive(tmp_path / "bad.tar", [_tar(members)]))
    assert not _exists(tmp_path / "escape") and not _exists(Path("/tmp/owned"))


def _exists(p: Path) -> bool:
    return p.exists()


async def test_overlay_keeps_the_image_untouched(rt: ProcessRuntime, tmp_path: Path) -> None:
    await _run_to_exit(rt, tmp_path, "echo hi > /etc/written; rm /bin/ls; mkdir /newdir")
    image = await rt.image_status(BUSYBOX_REF)
    assert image is not None
    root = Path(image.rootfs_path)
    assert not (root / "etc/written").exists() and not (root / "newdir").exists()
    assert (root / "bin/ls").is_symlink()


async def test_readonly_rootfs_and_mounts(rt: ProcessRuntime, tmp_path: Path) -> None:
    from pykubelet.runtime import Mount, SecurityConfig

    data = tmp_path / "vol"
    data.mkdir()
    (data / "in").write_text("from host")
    log = await _run_to_exit(
        rt,
        tmp_path,
        "cat /data/in; echo x > /data/out && echo wrote-vol; echo x > /root/f || echo ro-root",
        mounts=(Mount(container_path="/data", host_path=str(data)),),
        security=SecurityConfig(readonly_rootfs=True),
    )
    text = log.read_text()
    assert "from host" in text and "wrote-vol" in text and "ro-root" in text
    assert (data / "out").read_text() == "x\n"


# ---------------------------------------------------------------------- streams


async def _running(
    rt: ProcessRuntime, tmp_path: Path, script: str, **kw: Unpack[ContainerOptions]
) -> tuple[str, str]:
    sc = sandbox_config(log_directory=str(tmp_path / "logs"))
    sid = await rt.run_pod_sandbox(sc)
    cid = await rt.create_container(sid, _cfg(script, **kw), sc)
    await rt.start_container(cid)
    return sid, cid


async def test_exec_sync_enters_the_container(rt: ProcessRuntime, tmp_path: Path) -> None:
    _sid, cid = await _running(rt, tmp_path, "sleep 30", envs=(("GREETING", "hej"),))
    r = await rt.exec_sync(cid, ["sh", "-c", "echo $GREETING; ps -o pid,args; exit 4"], 10)
    assert r.exit_code == 4
    lines = r.stdout.decode().splitlines()
    assert lines[0] == "hej"
    # the container's PID 1 (still ``sh -c sleep 30`` if the exec came before sh exec'd sleep)
    assert any(line.split()[0] == "1" and line.endswith("sleep 30") for line in lines[1:]), lines
    r = await rt.exec_sync(cid, ["sh", "-c", "echo oops >&2; test -e /bin/busybox"], 10)
    assert (r.exit_code, r.stderr) == (0, b"oops\n")


async def test_exec_after_the_container_stopped_is_refused(
    rt: ProcessRuntime, tmp_path: Path
) -> None:
    """The helper's options are built on a container's first exec and kept; every later exec
    still checks that the container runs."""
    _sid, cid = await _running(rt, tmp_path, "sleep 30")
    assert (await rt.exec_sync(cid, ["true"], 10)).exit_code == 0
    await rt.stop_container(cid, 0)
    with pytest.raises(ContainerNotRunning):
        await rt.exec_sync(cid, ["true"], 10)


async def test_exec_gets_the_containers_user_capabilities_and_cwd(
    rt: ProcessRuntime, tmp_path: Path
) -> None:
    from pykubelet.runtime import SecurityConfig

    sec = SecurityConfig(run_as_user=1234, run_as_group=2345, no_new_privs=True)
    _sid, cid = await _running(rt, tmp_path, "sleep 30", security=sec, working_dir="/tmp/work")
    script = "id; pwd; grep -E '^(CapEff|CapBnd|NoNewPrivs)' /proc/self/status"
    r = await rt.exec_sync(cid, ["sh", "-c", script], 10)
    out = r.stdout.decode()
    assert "uid=1234 gid=2345" in out and "/tmp/work" in out, out
    fields = dict(line.split(":\t") for line in out.splitlines() if ":\t" in line)
    assert fields["CapEff"] == "0000000000000000" and fields["NoNewPrivs"] == "1"
    assert int(fields["CapBnd"], 16) & (1 << 21) == 0  # no CAP_SYS_ADMIN, even in the bound set


async def test_exec_runs_in_the_containers_cgroups_with_only_its_stdio(
    rt: ProcessRuntime, tmp_path: Path
) -> None:
    """Every hierarchy (v1 joined through ``tasks``, v2 by clone3 into the cgroup), no fd of
    the agent, and SIGPIPE at its default (the agent ignores it)."""
    _sid, cid = await _running(rt, tmp_path, "sleep 30")
    main = (await rt.exec_sync(cid, ["cat", "/proc/1/cgroup"], 10)).stdout.decode()
    mine = (await rt.exec_sync(cid, ["cat", "/proc/self/cgroup"], 10)).stdout.decode()
    assert mine == main and cid in main, (mine, main)
    r = await rt.exec_sync(cid, ["ls", "/proc/self/fd"], 10)
    assert sorted(r.stdout.split()) == [b"0", b"1", b"2", b"3"], r.stdout  # 3: ls's own dir
    status = (await rt.exec_sync(cid, ["cat", "/proc/self/status"], 10)).stdout.decode()
    ignored = int(next(x for x in status.splitlines() if x.startswith("SigIgn:")).split()[1], 16)
    assert not ignored & (1 << 12), status  # SIGPIPE (13) is not ignored


async def test_exec_sync_timeout_kills_the_command(rt: ProcessRuntime, tmp_path: Path) -> None:
    from pykubelet.runtime.errors import ExecTimeout

    _sid, cid = await _running(rt, tmp_path, "sleep 30")
    with pytest.raises(ExecTimeout):
        await rt.exec_sync(cid, ["sh", "-c", "echo $$ > /tmp/exec.pid; exec sleep 60"], 0.5)
    # gone, or a zombie: the container's PID 1 (sleep) never reaps the orphans it inherits
    script = "grep State /proc/$(cat /tmp/exec.pid)/status"
    left = (await rt.exec_sync(cid, ["sh", "-c", script], 10)).stdout.decode()
    assert left == "" or "zombie" in left, f"the timed-out command still runs: {left}"


async def test_a_cancelled_exec_kills_its_command(rt: ProcessRuntime, tmp_path: Path) -> None:
    """The client went away: the session is cancelled and the command must not live on."""
    _sid, cid = await _running(rt, tmp_path, "sleep 30")
    started = asyncio.Event()

    async def out(data: bytes) -> None:
        started.set()

    task = asyncio.ensure_future(
        rt.exec(cid, ["sh", "-c", "echo up; exec sleep 61"], StreamIO(stdout=out))
    )
    await asyncio.wait_for(started.wait(), 30)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    async def gone() -> bool:  # SIGKILL is delivered, then acted on when it next runs
        ps = (await rt.exec_sync(cid, ["ps", "-o", "stat,args"], 10)).stdout.decode()
        assert "sleep 30" in ps, ps  # the listing works (the container's own process is in it)
        return not [ln for ln in ps.splitlines() if "sleep 61" in ln and not ln.startswith("Z")]

    await wait_for(gone, 10, "the cancelled exec's command to die")


async def _chunks(*items: bytes) -> AsyncIterator[bytes]:
    for item in items:
        yield item


class _Sink:
    def __init__(self) -> None:
        self.data = bytearray()

    async def __call__(self, b: bytes) -> None:
        self.data += b


async def test_exec_stream_stdin_stdout(rt: ProcessRuntime, tmp_path: Path) -> None:
    _sid, cid = await _running(rt, tmp_path, "sleep 30")
    out, err = _Sink(), _Sink()
    io_ = StreamIO(stdin=_chunks(b"hello ", b"world\n"), stdout=out, stderr=err)
    code = await rt.exec(cid, ["sh", "-c", "cat; echo e >&2; exit 2"], io_)
    assert (code, bytes(out.data), bytes(err.data)) == (2, b"hello world\n", b"e\n")


async def test_exec_output_into_a_slow_client_blocks_the_command(
    rt: ProcessRuntime, tmp_path: Path
) -> None:
    """A full pipe makes the command wait (its end of the pipe is blocking), not fail with
    EAGAIN, while the client reads slowly."""
    _sid, cid = await _running(rt, tmp_path, "sleep 30")
    got = bytearray()

    async def slow(data: bytes) -> None:
        got.extend(data)
        await asyncio.sleep(0.002)

    err = _Sink()
    script = "head -c 2000000 /dev/zero && echo done >&2"
    code = await rt.exec(cid, ["sh", "-c", script], StreamIO(stdout=slow, stderr=err))
    assert (code, len(got), bytes(err.data)) == (0, 2_000_000, b"done\n")


async def test_exec_tty_with_resize(rt: ProcessRuntime, tmp_path: Path) -> None:
    _sid, cid = await _running(rt, tmp_path, "sleep 30")
    out = _Sink()

    async def sizes() -> AsyncIterator[TerminalSize]:
        yield TerminalSize(width=123, height=45)

    resized = asyncio.Event()

    async def stdin() -> AsyncIterator[bytes]:
        await wait_for(_true_after(resized), 5)
        yield b"stty size; [ -t 0 ] && echo is-a-tty; exit 3\n"

    async def sizes_then_flag() -> AsyncIterator[TerminalSize]:
        async for s in sizes():
            yield s
        resized.set()

    io_ = StreamIO(stdin=stdin(), stdout=out, tty=True, resize=sizes_then_flag())
    code = await rt.exec(cid, ["sh"], io_)
    text = bytes(out.data).decode(errors="replace")
    assert code == 3
    assert "45 123" in text and "is-a-tty" in text


def _true_after(event: asyncio.Event) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return event.is_set()

    return check


async def test_a_tty_container_gets_a_terminal_of_its_own_devpts(
    rt: ProcessRuntime, tmp_path: Path
) -> None:
    """Both helpers make the container's terminal from its own devpts, so it has a name there
    (``tty``) and is the controlling terminal (job control)."""
    log = await _run_to_exit(
        rt, tmp_path, "tty; [ -t 0 ] && echo is-a-tty; ls /dev/pts", tty=True, stdin=True
    )
    text = b"".join(parse_record(ln).message for ln in log.read_bytes().splitlines()).decode()
    assert "/dev/pts/0" in text and "is-a-tty" in text and "not a tty" not in text, text


async def test_attach_to_container_stdio(rt: ProcessRuntime, tmp_path: Path) -> None:
    _sid, cid = await _running(rt, tmp_path, "read line; echo got:$line", stdin=True)
    out = _Sink()
    await rt.attach(cid, StreamIO(stdin=_chunks(b"ping\n"), stdout=out, stderr=out))
    assert b"got:ping" in bytes(out.data)
    await wait_state(rt, cid, ContainerState.EXITED)


async def test_port_forward_into_the_pod_network(rt: ProcessRuntime, tmp_path: Path) -> None:
    sid, cid = await _running(rt, tmp_path, "nc -l -p 8080 -e sh -c 'echo served; cat'")
    log = Path((await rt.container_status(cid)).log_path)

    async def listening() -> bool:
        r = await rt.exec_sync(cid, ["sh", "-c", "netstat -tln | grep -q :8080"], 5)
        return r.exit_code == 0

    await wait_for(listening, 10)
    conn = await rt.port_forward(sid, 8080)
    try:
        got = b""
        async with asyncio.timeout(10):
            while b"served\n" not in got:
                got += await conn.read()
            await conn.write(b"echo-me\n")
            while b"echo-me\n" not in got:
                got += await conn.read()
    finally:
        await conn.close()
    # the port is only inside the pod: nothing listens on the host's loopback
    with pytest.raises(OSError):
        _r, w = await asyncio.open_connection("127.0.0.1", 8080)
        w.close()
    assert _exists(log)


async def test_port_forward_host_network_pod(rt: ProcessRuntime, tmp_path: Path) -> None:
    from pykubelet.runtime import NamespaceMode
    from tests.conftest import free_port

    port = free_port()
    sc = sandbox_config(log_directory=str(tmp_path / "logs"), network=NamespaceMode.NODE)
    sid = await rt.run_pod_sandbox(sc)
    # on the host's network: listen on loopback only
    script = (
        f"mkdir -p /www && echo on-host > /www/index.html && httpd -f -p 127.0.0.1:{port} -h /www"
    )
    cid = await rt.create_container(sid, _cfg(script), sc)
    await rt.start_container(cid)

    async def served() -> bool:
        try:
            conn = await rt.port_forward(sid, port)
        except OSError:
            return False
        try:
            await conn.write(b"GET /index.html HTTP/1.0\r\n\r\n")
            data = b""
            async with asyncio.timeout(5):
                while chunk := await conn.read():
                    data += chunk
            return data.startswith(b"HTTP/1.") and data.endswith(b"on-host\n")
        finally:
            await conn.close()

    await wait_for(served, 10, "the host-network pod's server")


async def test_attach_large_stdin_then_stdin_once_closes_it(
    rt: ProcessRuntime, tmp_path: Path
) -> None:
    # 1 MiB is far more than a pipe holds: the shim must hold it back until the container reads
    _sid, cid = await _running(rt, tmp_path, "wc -c", stdin=True, stdin_once=True)
    out = _Sink()
    blob = b"z" * (1 << 20)
    await rt.attach(cid, StreamIO(stdin=_chunks(blob[: 1 << 19], blob[1 << 19 :]), stdout=out))
    assert bytes(out.data).strip() == b"1048576"
    assert (await rt.container_status(cid)).exit_code == 0


async def test_a_stuck_attach_client_cannot_stall_the_container(
    rt: ProcessRuntime, tmp_path: Path
) -> None:
    _sid, cid = await _running(
        rt, tmp_path, "sleep 0.5; head -c 4000000 /dev/zero | tr '\\0' a; echo; echo done"
    )
    dfd = _dirfd(rt.layout.shim_dir(cid))
    try:  # connect, and never read
        _r, writer = await asyncio.open_unix_connection(f"/proc/self/fd/{dfd}/attach.sock")
    finally:
        _close(dfd)
    try:
        await wait_state(rt, cid, ContainerState.EXITED, 20)
    finally:
        writer.close()
    assert read_tail((await rt.container_status(cid)).log_path).endswith(b" stdout F done\n")


def _dirfd(d: Path) -> int:
    import os

    return os.open(d, os.O_RDONLY | os.O_DIRECTORY)


def _close(fd: int) -> None:
    import os

    os.close(fd)


def read_tail(path: str) -> bytes:
    return Path(path).read_bytes()[-200:]
