"""Which container's log a request reads (reference §4.3, ``validateContainerLogStatus``)."""

from __future__ import annotations

from pykubelet.api import Pod
from pykubelet.errors import InvalidInput

__all__ = ["LogUnavailable", "select_container_id"]


class LogUnavailable(InvalidInput):
    """The container exists in the spec but has no log to read now (HTTP 400)."""


_WAITING = {
    "ErrImagePull": "image can't be pulled",
    "ImagePullBackOff": "trying and failing to pull image",
}


def select_container_id(pod: Pod, container: str, *, previous: bool) -> str:
    """The ``<runtime>://<id>`` of the container whose log to read; ``LogUnavailable`` with
    upstream's exact message otherwise."""
    name = pod.meta.name
    status = pod.status.find_container(container) if pod.status is not None else None
    if status is None:
        raise LogUnavailable(f'container "{container}" in pod "{name}" is not available')
    last = status.last_state.terminated
    if previous:
        if last is None or not last.container_id:
            raise LogUnavailable(
                f'previous terminated container "{container}" in pod "{name}" not found'
            )
        return last.container_id
    state = status.state
    if state.running is not None:
        if status.container_id:
            return status.container_id
    elif state.terminated is not None:
        if state.terminated.container_id:
            return state.terminated.container_id
        if status.container_id:
            return status.container_id
        if last is not None and last.container_id:
            return last.container_id
        raise LogUnavailable(f'container "{container}" in pod "{name}" is terminated')
    elif state.waiting is not None:
        if last is not None and last.container_id:
            return last.container_id
        reason = state.waiting.reason
        detail = _WAITING.get(reason, reason)
        raise LogUnavailable(
            f'container "{container}" in pod "{name}" is waiting to start: {detail}'
        )
    raise LogUnavailable(
        f'container "{container}" in pod "{name}" is waiting to start - no logs yet'
    )
