"""The static pod directory: real files, real inotify, changes noticed within a second."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from pykubelet.pods import PodUpdate, StaticDirSource, UpdateOp
from pykubelet.pods.source_file import POLL_S

GOOD = """\
apiVersion: v1
kind: Pod
metadata:
  name: {name}
spec:
  containers:
  - name: main
    image: busybox
    args: ["{arg}"]
"""


class Watcher:
    def __init__(self, source: StaticDirSource, q: asyncio.Queue[PodUpdate]) -> None:
        self.source = source
        self.q = q
        self.last: PodUpdate | None = None

    async def next(self, timeout_s: float = 1.0) -> PodUpdate:
        async with asyncio.timeout(timeout_s):
            self.last = await self.q.get()
        return self.last

    def names(self) -> list[str]:
        assert self.last is not None
        return [p.meta.name for p in self.last.pods]


@contextlib.asynccontextmanager
async def watching(path: Path, *, poll: bool = False) -> AsyncIterator[Watcher]:
    q: asyncio.Queue[PodUpdate] = asyncio.Queue()
    src = StaticDirSource(str(path), "node1", q, use_inotify=not poll)
    task = asyncio.create_task(src.run())
    try:
        w = Watcher(src, q)
        await w.next()
        yield w
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def write(path: Path, text: str) -> None:
    tmp = path.with_name("." + path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


@pytest.mark.parametrize("poll", [False, True], ids=["inotify", "polling"])
async def test_written_changed_removed_within_one_second(tmp_path: Path, poll: bool) -> None:
    async with watching(tmp_path, poll=poll) as w:
        assert w.last is not None and w.last.op is UpdateOp.SET and w.last.pods == ()
        write(tmp_path / "a.yaml", GOOD.format(name="a", arg="1"))
        first = await w.next()
        assert w.names() == ["a-node1"]
        first_uid = first.pods[0].uid
        write(tmp_path / "a.yaml", GOOD.format(name="a", arg="2"))
        changed = await w.next()
        assert w.names() == ["a-node1"] and changed.pods[0].uid != first_uid
        (tmp_path / "a.yaml").unlink()
        await w.next()
        assert w.names() == []


async def test_json_and_yaml_and_dotfiles(tmp_path: Path) -> None:
    doc = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "j"},
        "spec": {"containers": [{"name": "c", "image": "busybox"}]},
    }
    (tmp_path / "j.json").write_text(json.dumps(doc))
    (tmp_path / "y.yml").write_text(GOOD.format(name="y", arg="1"))
    (tmp_path / ".hidden.yaml").write_text(GOOD.format(name="hidden", arg="1"))
    async with watching(tmp_path) as w:
        assert w.names() == ["j-node1", "y-node1"]
        pod = w.last.pods[0] if w.last else None
        assert pod is not None
        ann = pod.meta.annotations
        assert ann["kubernetes.io/config.source"] == "file"
        assert ann["kubernetes.io/config.hash"] == pod.uid
        assert ann["kubernetes.io/config.seen"].endswith("Z")
        spec = pod.to_dict()["spec"]
        assert spec["nodeName"] == "node1"
        assert {"operator": "Exists", "effect": "NoExecute"} in spec["tolerations"]


async def test_bad_files_are_reported_and_never_disturb_good_pods(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="pykubelet.pods.source_file")
    write(tmp_path / "good.yaml", GOOD.format(name="good", arg="1"))
    async with watching(tmp_path) as w:
        good_uid = w.last.pods[0].uid if w.last else ""
        write(tmp_path / "broken.yaml", "kind: Pod\nmetadata: [unclosed\n")
        write(
            tmp_path / "invalid.yaml",
            GOOD.format(name="inv", arg="1").replace("    image: busybox\n", ""),
        )
        write(
            tmp_path / "two.yaml",
            GOOD.format(name="x", arg="1") + "---\n" + GOOD.format(name="y", arg="1"),
        )
        write(tmp_path / "zdup.yaml", GOOD.format(name="good", arg="other"))
        deadline = asyncio.get_running_loop().time() + 1.0
        while len(w.source.errors()) < 4 and asyncio.get_running_loop().time() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.02)
        errors = w.source.errors()
        assert set(map(os.path.basename, errors)) == {
            "broken.yaml",
            "invalid.yaml",
            "two.yaml",
            "zdup.yaml",
        }
        assert "not valid YAML" in errors[str(tmp_path / "broken.yaml")]
        assert "spec.containers[0].image: Required value" in errors[str(tmp_path / "invalid.yaml")]
        assert "duplicate pod 'default/good-node1'" in errors[str(tmp_path / "zdup.yaml")]
        assert "invalid.yaml" in caplog.text and "spec.containers[0].image" in caplog.text
        # the good pod was never re-emitted with a different identity
        assert w.q.empty() or all(p.uid == good_uid for u in [w.q.get_nowait()] for p in u.pods)
        # a duplicate never displaces the running pod, even if it sorts first
        write(tmp_path / "adup.yaml", GOOD.format(name="good", arg="again"))
        write(tmp_path / "broken.yaml", GOOD.format(name="fixed", arg="1"))
        await w.next()
        assert w.names() == ["fixed-node1", "good-node1"]
        assert (
            [p.uid for p in w.last.pods if p.meta.name == "good-node1"] == [good_uid]
            if w.last
            else False
        )
        assert str(tmp_path / "adup.yaml") in w.source.errors()


async def test_uid_is_stable_and_depends_on_node_and_path(tmp_path: Path) -> None:
    write(tmp_path / "a.yaml", GOOD.format(name="a", arg="1"))
    async with watching(tmp_path) as w:
        uid = w.last.pods[0].uid if w.last else ""
        w.source.rescan()
        assert w.q.empty()  # nothing changed: nothing emitted
    async with watching(tmp_path) as w2:
        assert w2.last and w2.last.pods[0].uid == uid
    (tmp_path / "a.yaml").rename(tmp_path / "b.yaml")
    async with watching(tmp_path) as w3:
        assert w3.last and w3.last.pods[0].uid != uid
    assert POLL_S <= 0.5


async def test_directory_created_later_is_picked_up(tmp_path: Path) -> None:
    d = tmp_path / "later"
    async with watching(d) as w:
        assert w.names() == []
        d.mkdir()
        write(d / "a.yaml", GOOD.format(name="a", arg="1"))
        await w.next(timeout_s=1.5)
        assert w.names() == ["a-node1"]
