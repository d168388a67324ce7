"""Which container's log a request reads (reference §4.3, ``validateContainerLogStatus``)."""

from __future__ import annotations

from pykubelet.api import Pod
from pykubelet.core.errors import InvalidInput

__all__ = ["LogUnavailable", "select_container_id"]


class LogUnavailable(InvalidInput):
    """The container exists in the spec but has no log to read now (HTTP 400)."""


_WAITING = {
    "ErrImagePull": "image can't be pulled",
    "ImagePullBackOff": "trying and failing to pull image",
}


def select_container_id(pod: Pod, container: str, *, previous: bool) -> str:
    """The ``<runtime>://<id>`` of the container whose log to read; ``LogUnavailable`` with
    upstream's exact message otherwise. The cases are tried in upstream's order."""
    name = pod.meta.name
    status = pod.status.find_container(container) if pod.status is not None else None
    if status is None:
        raise LogUnavailable(f'container "{container}" in pod "{name}" is not available')
    last = status.last_state.terminated
    state = status.state
    terminated_msg = f'container "{container}" in pod "{name}" is terminated'
    if previous:
        if last is None or not last.container_id:
            raise LogUnavailable(
                f'previous terminated container "{container}" in pod "{name}" not found'
            )
        return last.container_id
    if state.running is not None:
        return status.container_id
    if state.terminated is not None:
        # the next instance did not start: its id is empty, read the last one's log
        if state.terminated.container_id:
            return state.terminated.container_id
        if last is not None and last.container_id:
            return last.container_id
        raise LogUnavailable(terminated_msg)
    if last is not None:
        if not last.container_id:
            raise LogUnavailable(terminated_msg)
        return last.container_id
    if state.waiting is not None:
        reason = state.waiting.reason
        raise LogUnavailable(
            f'container "{container}" in pod "{name}" is waiting to start: '
            + _WAITING.get(reason, reason)
        )
    raise LogUnavailable(
        f'container "{container}" in pod "{name}" is waiting to start - no logs yet'
    )
