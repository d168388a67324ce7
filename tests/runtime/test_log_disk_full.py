"""Disk full on the container log volume (issue #14): the container keeps running, the agent's
runtime keeps answering, the lost lines are counted (the shim's ``logloss``, the
``pykubelet_container_log_records_lost_total`` counter, a warning), the file stays made of whole
CRI records, and writing resumes when space returns. The log volume is a small tmpfs the test
mounts itself (and unmounts, whatever happens)."""

from __future__ import annotations

import contextlib
import errno
import logging
import re
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from pykubelet.logs import parse_record
from pykubelet.runtime import ContainerConfig, ContainerState
from pykubelet.runtime.log_metrics import CONTAINER_LOG_RECORDS_LOST
from pykubelet.runtime.process import ProcessRuntime
from pykubelet.runtime.process.logloss import LogLossWatch, read_log_loss
from tests.runtime.conftest import BUSYBOX_REF, sandbox_config, wait_for
from tests.small_volume import fill, small_tmpfs

pytestmark = pytest.mark.root


@pytest.fixture
def log_volume(tmp_path: Path) -> Iterator[Path]:
    """A 256 KiB tmpfs: small enough to fill in a moment."""
    with small_tmpfs(tmp_path / "logs", "256k") as d:
        yield d


def _counted() -> float:
    """pykubelet_container_log_records_lost_total as /metrics serves it."""
    samples = next(iter(CONTAINER_LOG_RECORDS_LOST.collect())).samples
    return float(next(s.value for s in samples if s.name.endswith("_total")))


def _numbers(log: Path) -> list[int]:
    """The line numbers the container printed, from a log that must be whole records only."""
    out = []
    for line in log.read_bytes().splitlines():
        rec = parse_record(line)  # raises on a torn record
        m = re.fullmatch(rb"line (\d+)", rec.message)
        assert m and not rec.partial, line
        out.append(int(m.group(1)))
    return out


@pytest.mark.parametrize("helper", ["native", "python"])
async def test_disk_full_loses_counted_lines_and_writing_resumes(
    make_runtime: Callable[..., ProcessRuntime],
    busybox_tar: Path,
    log_volume: Path,
    helper: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    rt = make_runtime(helper=helper)
    await rt.import_image(busybox_tar)
    sc = sandbox_config(log_directory=str(log_volume))
    sid = await rt.run_pod_sandbox(sc)
    script = "i=0; while true; do echo line $i; i=$((i+1)); sleep 0.005; done"
    cfg = ContainerConfig(
        name="c", image=BUSYBOX_REF, command=("sh", "-c", script), log_path="c/0.log"
    )
    cid = await rt.create_container(sid, cfg, sc)
    await rt.start_container(cid)
    log = Path((await rt.container_status(cid)).log_path)
    loss_file = rt.layout.shim_dir(cid) / "logloss"
    watch = LogLossWatch()
    counted_before = _counted()

    def lost() -> int:
        loss = read_log_loss(loss_file)
        return loss.records if loss else 0

    await wait_for(lambda: len(_numbers(log)) >= 20, 20, "first lines")
    assert watch.poll(rt.log_loss_files()) == []  # nothing lost yet
    filler = fill(log_volume)
    await wait_for(lambda: lost() >= 50, 30, "lines lost to the full disk")

    # the container runs on, the runtime answers, the loss is counted and reported
    assert (await rt.container_status(cid)).state is ContainerState.RUNNING
    with caplog.at_level(logging.WARNING, logger="pykubelet.runtime.process.logloss"):
        grown = watch.poll(rt.log_loss_files())
    assert len(grown) == 1 and grown[0].records >= 50
    assert grown[0].errno == errno.ENOSPC
    assert _counted() - counted_before == grown[0].records
    assert "No space left on device" in caplog.text and "keeps running" in caplog.text

    filler.unlink()  # space returns
    lines_then = len(_numbers(log))
    await wait_for(lambda: len(_numbers(log)) > lines_then + 50, 20, "writing to resume")
    numbers = _numbers(log)
    loss = read_log_loss(loss_file)
    assert loss is not None
    # every line the container printed is in the file or counted as lost, never both
    missing = set(range(numbers[0], numbers[-1] + 1)) - set(numbers)
    assert numbers == sorted(numbers)
    assert numbers[-1] > numbers[0] + loss.records
    assert len(missing) == loss.records, (len(missing), loss)
    with contextlib.suppress(Exception):
        await rt.stop_container(cid, 1.0)
