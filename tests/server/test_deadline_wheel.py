"""The listener's deadline wheel: a deadline fires at most one resolution early, never late,
once, and not at all after it was dropped or moved."""

from __future__ import annotations

from pykubelet.server.listener import DeadlineWheel


def test_deadlines_fire_once_in_their_bucket_and_never_after_discard() -> None:
    fired: list[str] = []
    wheel = DeadlineWheel(0.25)
    for key, when in (("a", 10.0), ("b", 10.2), ("c", 10.3), ("d", 11.0), ("gone", 10.1)):
        wheel.add(key, when, lambda key=key: fired.append(key))  # type: ignore[misc]
    wheel.discard("gone")
    wheel.add("d", 12.0, lambda: fired.append("d"))  # moved later: only the new deadline counts
    assert len(wheel) == 4
    assert wheel.next_due() == 10.0

    for cb in wheel.pop_due(9.99):
        cb()
    assert fired == []
    for cb in wheel.pop_due(10.2):  # 10.0 and 10.2 are due; 10.3 is in the next bucket
        cb()
    assert sorted(fired) == ["a", "b"]
    for cb in wheel.pop_due(10.25):  # its bucket (10.25-10.5) is due from 10.25: early, not late
        cb()
    assert sorted(fired) == ["a", "b", "c"]
    for cb in wheel.pop_due(11.9):
        cb()
    assert sorted(fired) == ["a", "b", "c"]
    for cb in wheel.pop_due(12.0):
        cb()
    assert sorted(fired) == ["a", "b", "c", "d"]
    assert len(wheel) == 0 and wheel.next_due() is None and wheel.pop_due(99.0) == []
