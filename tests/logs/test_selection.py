"""select_container_id row by row against upstream's validateContainerLogStatus."""

from __future__ import annotations

import pytest

from pykubelet.api import (
    ContainerStateRunning,
    ContainerStateTerminated,
    ContainerStateView,
    ContainerStateWaiting,
    ContainerStatusView,
    Pod,
    PodStatus,
)
from pykubelet.logs import LogUnavailable, select_container_id

RUN = ContainerStateView(running=ContainerStateRunning(started_at=1.0))
WAIT = ContainerStateView(waiting=ContainerStateWaiting(reason="CrashLoopBackOff"))
PULL = ContainerStateView(waiting=ContainerStateWaiting(reason="ErrImagePull"))
NONE = ContainerStateView()


def term(cid: str) -> ContainerStateView:
    return ContainerStateView(terminated=ContainerStateTerminated(exit_code=1, container_id=cid))


def pod(state: ContainerStateView, last: ContainerStateView = NONE, cid: str = "x://cur") -> Pod:
    p = Pod.from_dict(
        {"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "i:1"}]}}
    )
    cs = ContainerStatusView(name="c", image="i:1", state=state, last_state=last, container_id=cid)
    return p.with_status(PodStatus(container_statuses=(cs,)))


ROWS = [
    # state, last, previous, expected id or error text
    (RUN, NONE, False, "x://cur"),
    (RUN, term("x://old"), True, "x://old"),
    (RUN, NONE, True, 'previous terminated container "c" in pod "p" not found'),
    (RUN, term(""), True, 'previous terminated container "c" in pod "p" not found'),
    (term("x://t"), NONE, False, "x://t"),
    (term(""), term("x://old"), False, "x://old"),
    (term(""), NONE, False, 'container "c" in pod "p" is terminated'),
    (WAIT, term("x://old"), False, "x://old"),
    (WAIT, term(""), False, 'container "c" in pod "p" is terminated'),
    (WAIT, NONE, False, 'container "c" in pod "p" is waiting to start: CrashLoopBackOff'),
    (PULL, NONE, False, 'container "c" in pod "p" is waiting to start: image can\'t be pulled'),
    (NONE, NONE, False, 'container "c" in pod "p" is waiting to start - no logs yet'),
]


@pytest.mark.parametrize(("state", "last", "previous", "expected"), ROWS)
def test_row(
    state: ContainerStateView, last: ContainerStateView, previous: bool, expected: str
) -> None:
    p = pod(state, last)
    if "://" in expected:
        assert select_container_id(p, "c", previous=previous) == expected
    else:
        with pytest.raises(LogUnavailable) as e:
            select_container_id(p, "c", previous=previous)
        assert e.value.reason == expected


def test_unknown_container_or_no_status() -> None:
    with pytest.raises(LogUnavailable, match='container "z" in pod "p" is not available'):
        select_container_id(pod(RUN), "z", previous=False)
    bare = Pod.from_dict(
        {"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "i:1"}]}}
    )
    with pytest.raises(LogUnavailable, match="is not available"):
        select_container_id(bare, "c", previous=False)
