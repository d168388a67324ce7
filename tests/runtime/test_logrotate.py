"""The rotation policy both runtimes share (``runtime/logrotate.py``): the CRI runtime's
``rotate`` and the process runtime's ``tidy_rotations`` behind its shim, on real files."""

from __future__ import annotations

import gzip
import os
from pathlib import Path

from pykubelet.runtime.logrotate import rotate, tidy_rotations


def test_rotation_gzips_all_but_the_newest_and_keeps_max_files(tmp_path: Path) -> None:
    log = tmp_path / "0.log"
    names = []
    for i in range(4):
        log.write_text(f"round {i}\n")
        names.append(rotate(str(log), 4, 1_700_000_000 + i))  # 2023-11-14 22:13:20 UTC + i
    assert not log.exists()  # the runtime reopens it
    left = sorted(p.name for p in tmp_path.iterdir())
    # max files 4: the current file, the newest rotation plain, two older ones gzipped
    assert left == ["0.log.20231114-221321.gz", "0.log.20231114-221322.gz", "0.log.20231114-221323"]
    assert (tmp_path / left[-1]).read_text() == "round 3\n"
    assert gzip.decompress((tmp_path / left[0]).read_bytes()) == b"round 1\n"
    assert names[-1] is not None and os.path.basename(names[-1]) == left[-1]


def test_rotation_cleans_leftovers_and_waits_for_a_free_name(tmp_path: Path) -> None:
    log = tmp_path / "0.log"
    (tmp_path / "0.log.20231114-221300").write_text("compressed already\n")
    (tmp_path / "0.log.20231114-221300.gz").write_bytes(gzip.compress(b"compressed already\n"))
    (tmp_path / "0.log.20231114-221310.tmp").write_text("half-written\n")
    log.write_text("now\n")
    assert rotate(str(log), 2, 1_700_000_000) == str(tmp_path / "0.log.20231114-221320")
    # max files 2: no older rotation is kept; the interrupted rotation's files are gone
    assert sorted(p.name for p in tmp_path.iterdir()) == ["0.log.20231114-221320"]
    log.write_text("same second\n")
    assert rotate(str(log), 3, 1_700_000_000) is None  # that name is taken: the next pass
    assert log.read_text() == "same second\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["0.log", "0.log.20231114-221320"]


def test_tidy_behind_the_shim_keeps_the_newest_plain_and_the_count(tmp_path: Path) -> None:
    log = tmp_path / "0.log"
    log.write_text("current\n")
    for s in range(5):  # five rotations as the shim names them, oldest first
        (tmp_path / f"0.log.20231114-22132{s}").write_text(f"rotation {s}\n")
    (tmp_path / "0.log.20231114-221319.tmp").write_text("half-written\n")  # interrupted
    # max files 4: the current file and three rotations, the newest plain
    assert tidy_rotations(str(log), 3, plain=1) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "0.log",
        "0.log.20231114-221322.gz",
        "0.log.20231114-221323.gz",
        "0.log.20231114-221324",
    ]
    assert gzip.decompress((tmp_path / "0.log.20231114-221322.gz").read_bytes()) == b"rotation 2\n"
    assert (tmp_path / "0.log.20231114-221324").read_text() == "rotation 4\n"
    assert log.read_text() == "current\n"
    assert tidy_rotations(str(log), 3, plain=1) == 0  # a second pass changes nothing
    assert len(list(tmp_path.iterdir())) == 4
