"""stream_log + TailHub without HTTP: history, follow, rotation, end, both watcher kinds."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from pykubelet.logs import LogOptions, TailHub, encode_records, stream_log
from pykubelet.runtime.logrotate import rotate
from tests.server.harness import wait_until

T = 1_700_000_000_000_000_000


def append(path: Path, text: str) -> None:
    with open(path, "ab") as f:
        f.write(encode_records("stdout", text.encode(), T))


class Sink:
    def __init__(self) -> None:
        self.data = b""
        self.changed = asyncio.Event()

    async def write(self, data: bytes) -> None:
        self.data += data
        self.changed.set()

    async def until(self, needle: bytes) -> None:
        async with asyncio.timeout(5):
            while needle not in self.data:
                self.changed.clear()
                await self.changed.wait()


@pytest.mark.parametrize("inotify", [True, False])
async def test_follow_rotation_and_end(tmp_path: Path, inotify: bool) -> None:
    log = tmp_path / "0.log"
    append(log, "old\n")
    running = True

    async def alive() -> bool:
        return running

    hub = TailHub(use_inotify=inotify, liveness_interval_s=0.2)
    sink = Sink()
    task = asyncio.create_task(
        stream_log(str(log), LogOptions(follow=True), sink.write, now_s=0, hub=hub, alive=alive)
    )
    try:
        await sink.until(b"old\n")
        assert hub.tails == 1 and hub.inotify_watches == (1 if inotify else 0)
        append(log, "new\n")
        await sink.until(b"new\n")
        # rotated as both runtimes do, with an older rotation gzipped beside it
        append(tmp_path / "0.log.20231114-221300", "gzipped\n")
        assert rotate(str(log), 3, T / 1e9) is not None
        assert (tmp_path / "0.log.20231114-221300.gz").exists()
        append(log, "rotated\n")
        await sink.until(b"rotated\n")
        append(log, "last\n")
        running = False
        async with asyncio.timeout(5):
            await task
        assert sink.data == b"old\nnew\nrotated\nlast\n"
        assert hub.tails == 0 and hub.inotify_watches == 0
    finally:
        task.cancel()
        hub.close()


async def test_limit_bytes_ends_a_follow(tmp_path: Path) -> None:
    log = tmp_path / "0.log"
    append(log, "abc\n")

    async def alive() -> bool:
        return True

    hub = TailHub()
    sink = Sink()
    task = asyncio.create_task(
        stream_log(
            str(log),
            LogOptions(follow=True, limit_bytes=6),
            sink.write,
            now_s=0,
            hub=hub,
            alive=alive,
        )
    )
    try:
        await sink.until(b"abc\n")
        append(log, "defgh\n")
        async with asyncio.timeout(5):
            await task
        assert sink.data == b"abc\nde"
        assert hub.tails == 0
    finally:
        task.cancel()
        hub.close()


async def test_slow_follower_recovers_the_gap_from_the_file(tmp_path: Path) -> None:
    log = tmp_path / "0.log"
    append(log, "start\n")

    async def alive() -> bool:
        return True

    hub = TailHub(max_buffered_bytes=1000)
    gate = asyncio.Event()
    got = bytearray()

    async def slow_write(data: bytes) -> None:
        got.extend(data)
        if b"start\n" in got:
            await gate.wait()

    task = asyncio.create_task(
        stream_log(str(log), LogOptions(follow=True), slow_write, now_s=0, hub=hub, alive=alive)
    )
    try:
        await wait_until(lambda: b"start\n" in got)
        lines = [f"line {i:04d}\n" for i in range(500)]  # ~5 KB, far above the 1000-byte cap
        for line in lines:
            append(log, line)
        await wait_until(lambda: hub.lagged == 1)
        gate.set()
        await wait_until(lambda: got.endswith(lines[-1].encode()))
        assert bytes(got) == b"start\n" + "".join(lines).encode()
    finally:
        task.cancel()
        hub.close()


async def test_directory_removed_while_followed(tmp_path: Path) -> None:
    import shutil

    d = tmp_path / "pod"
    d.mkdir()
    log = d / "0.log"
    append(log, "hello\n")
    running = True

    async def alive() -> bool:
        return running

    hub = TailHub(liveness_interval_s=0.2)
    sink = Sink()
    task = asyncio.create_task(
        stream_log(str(log), LogOptions(follow=True), sink.write, now_s=0, hub=hub, alive=alive)
    )
    try:
        await sink.until(b"hello\n")
        assert hub.inotify_watches == 1
        # The tail keeps the deleted file open (which pins the directory) until the
        # container ends; then everything is released.
        shutil.rmtree(d)
        running = False
        async with asyncio.timeout(5):
            await task
        assert sink.data == b"hello\n"
        await wait_until(lambda: hub.inotify_watches == 0 and hub.tails == 0)
    finally:
        task.cancel()
        hub.close()
