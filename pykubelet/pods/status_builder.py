"""Pure functions from runtime facts to a v1 PodStatus, as the kubelet computes it.

Phase follows upstream ``getPhase``; conditions are listed in upstream's order (Initialized,
Ready, ContainersReady, PodScheduled); containers never seen by the runtime wait with reason
``ContainerCreating`` (``PodInitializing`` when the pod has init containers).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from pykubelet.api import (
    Container,
    ContainerStateRunning,
    ContainerStateTerminated,
    ContainerStateView,
    ContainerStateWaiting,
    ContainerStatusView,
    Pod,
    PodCondition,
    PodStatus,
)
from pykubelet.runtime.types import ContainerState, ContainerStatus

__all__ = ["build_container_statuses", "build_pod_status", "pod_phase", "qos_class"]

# name -> runtime containers of that name, newest attempt first
History = Mapping[str, Sequence[ContainerStatus]]
Readiness = Callable[[str], bool | None]  # container id -> probe verdict, None: no probe


def _terminated(c: ContainerStatus, runtime_name: str) -> ContainerStateTerminated:
    reason = c.reason or ("Completed" if c.exit_code == 0 else "Error")
    return ContainerStateTerminated(
        exit_code=c.exit_code,
        reason=reason,
        message=c.message,
        started_at=c.started_at,
        finished_at=c.finished_at,
        container_id=f"{runtime_name}://{c.id}",
    )


def _view(c: ContainerStatus | None, runtime_name: str) -> ContainerStateView:
    if c is None:
        return ContainerStateView()
    if c.state is ContainerState.RUNNING:
        return ContainerStateView(running=ContainerStateRunning(started_at=c.started_at))
    if c.state is ContainerState.EXITED:
        return ContainerStateView(terminated=_terminated(c, runtime_name))
    return ContainerStateView(waiting=ContainerStateWaiting(reason="ContainerCreating"))


def build_container_statuses(
    containers: Sequence[Container],
    history: History,
    waiting: Mapping[str, ContainerStateWaiting],
    *,
    runtime_name: str,
    default_waiting: str,
    readiness: Readiness,
    started: Readiness | None = None,
    init: bool = False,
) -> tuple[ContainerStatusView, ...]:
    """``init``: init containers are ready once they exited 0 (upstream prober manager)."""
    out: list[ContainerStatusView] = []
    for spec in containers:
        # Upstream (1.20) never sets `started` on an init container; sidecars (1.29+) have it.
        has_started = not init or spec.restart_policy == "Always"
        attempts = history.get(spec.name, ())
        latest = attempts[0] if attempts else None
        previous = attempts[1] if len(attempts) > 1 else None
        pending = waiting.get(spec.name)
        if latest is None:
            state = ContainerStateView(
                waiting=pending or ContainerStateWaiting(reason=default_waiting)
            )
            out.append(
                ContainerStatusView(
                    name=spec.name,
                    image=spec.image,
                    state=state,
                    started=False if has_started else None,
                )
            )
            continue
        if latest.state is ContainerState.EXITED and pending is not None:
            state, last = ContainerStateView(waiting=pending), _view(latest, runtime_name)
        else:
            state, last = _view(latest, runtime_name), _view(previous, runtime_name)
        running = latest.state is ContainerState.RUNNING
        probe = readiness(latest.id) if running else None
        out.append(
            ContainerStatusView(
                name=spec.name,
                image=spec.image,
                state=state,
                last_state=last,
                ready=(
                    latest.state is ContainerState.EXITED and latest.exit_code == 0
                    if init and not spec.is_sidecar
                    else running and probe is not False
                ),
                restart_count=latest.attempt,
                image_id=latest.image_ref,
                container_id=f"{runtime_name}://{latest.id}",
                started=(
                    running and (started is None or started(latest.id) is not False)
                    if has_started
                    else None
                ),
            )
        )
    return tuple(out)


def _succeeded(s: ContainerStatusView) -> bool:
    return s.state.terminated is not None and s.state.terminated.exit_code == 0


def _initialized(spec: Container, s: ContainerStatusView) -> bool:
    """A regular init container is done when it exited 0; a sidecar (restartPolicy Always)
    once it runs and its startup probe, if any, succeeded (upstream 1.29)."""
    if spec.is_sidecar:
        return s.state.running is not None and s.started is True
    return _succeeded(s)


def _app_started(app: Sequence[ContainerStatusView]) -> bool:
    """Initialization is over once any app container has run: sidecar restarts after that
    do not take the pod back to Pending."""
    return any(
        s.state.running is not None
        or s.state.terminated is not None
        or s.last_state.terminated is not None
        for s in app
    )


def pod_phase(
    pod: Pod, init: Sequence[ContainerStatusView], app: Sequence[ContainerStatusView]
) -> str:
    """Upstream ``getPhase``."""
    policy = pod.spec.restart_policy
    pending_init = failed_init = 0
    initialized = _app_started(app)
    for spec, s in zip(pod.spec.init_containers, init, strict=True):
        if _initialized(spec, s) or (spec.is_sidecar and initialized):
            continue
        pending_init += 1
        t = s.state.terminated or s.last_state.terminated
        if t is not None and t.exit_code != 0:
            failed_init += 1
    running = waiting = stopped = succeeded = unknown = 0
    for s in app:
        if s.state.running is not None:
            running += 1
        elif s.state.terminated is not None:
            stopped += 1
            succeeded += s.state.terminated.exit_code == 0
        elif s.state.waiting is not None:
            if s.last_state.terminated is not None:
                stopped += 1
            else:
                waiting += 1
        else:
            unknown += 1
    if failed_init and policy == "Never":
        return "Failed"
    if pending_init or waiting:
        return "Pending"
    if running and not unknown:
        return "Running"
    if not running and stopped and not unknown:
        if policy == "Always":
            return "Running"
        if stopped == succeeded:
            return "Succeeded"
        if policy == "Never":
            return "Failed"
        return "Running"
    return "Pending"


def _quantities(c: Container, kind: str) -> dict[str, Any]:
    res = c.resources.get(kind) if isinstance(c.resources, Mapping) else None
    if not isinstance(res, Mapping):
        return {}
    return {k: v for k, v in res.items() if k in ("cpu", "memory")}


def qos_class(pod: Pod) -> str:
    """Guaranteed, Burstable or BestEffort (upstream ``GetPodQOS``, cpu and memory)."""
    any_set = False
    guaranteed = True
    for c in pod.spec.all_containers():
        limits, requests = _quantities(c, "limits"), _quantities(c, "requests")
        requests = {**limits, **requests}  # requests default to limits
        if limits or requests:
            any_set = True
        if set(limits) != {"cpu", "memory"} or any(
            str(requests.get(k)) != str(v) for k, v in limits.items()
        ):
            guaranteed = False
    if not any_set:
        return "BestEffort"
    return "Guaranteed" if guaranteed else "Burstable"


def _condition(kind: str, ok: bool, reason: str = "", message: str = "") -> PodCondition:
    if ok:
        return PodCondition(type=kind, status="True")
    return PodCondition(type=kind, status="False", reason=reason, message=message)


def build_pod_status(
    pod: Pod,
    history: History,
    waiting: Mapping[str, ContainerStateWaiting],
    *,
    runtime_name: str,
    readiness: Callable[[str], bool | None],
    started: Callable[[str], bool | None] | None = None,
    host_ip: str = "",
    pod_ip: str = "",
    start_time: float = 0.0,
) -> PodStatus:
    default = "PodInitializing" if pod.spec.init_containers else "ContainerCreating"
    kw: dict[str, Any] = dict(
        runtime_name=runtime_name, default_waiting=default, readiness=readiness, started=started
    )
    init = build_container_statuses(pod.spec.init_containers, history, waiting, init=True, **kw)
    app = build_container_statuses(pod.spec.containers, history, waiting, **kw)
    phase = pod_phase(pod, init, app)
    initialized = _app_started(app)
    incomplete = [
        s.name
        for spec, s in zip(pod.spec.init_containers, init, strict=True)
        if not (_initialized(spec, s) or (spec.is_sidecar and initialized))
    ]
    sidecars = [
        s for spec, s in zip(pod.spec.init_containers, init, strict=True) if spec.is_sidecar
    ]
    unready = [s.name for s in (*sidecars, *app) if not s.ready]
    done = phase in ("Succeeded", "Failed")
    ready_reason = "PodCompleted" if done and phase == "Succeeded" else "ContainersNotReady"
    ready_msg = (
        ""
        if ready_reason == "PodCompleted"
        else (f"containers with unready status: [{' '.join(unready)}]")
    )
    ready = not unready and not done
    conditions = (
        _condition(
            "Initialized",
            not incomplete or phase == "Succeeded",
            "ContainersNotInitialized",
            f"containers with incomplete status: [{' '.join(incomplete)}]",
        ),
        _condition("Ready", ready, ready_reason, ready_msg),
        _condition("ContainersReady", ready, ready_reason, ready_msg),
        PodCondition(type="PodScheduled", status="True"),
    )
    return PodStatus(
        phase=phase,
        conditions=conditions,
        host_ip=host_ip,
        pod_ip=pod_ip,
        pod_ips=(pod_ip,) if pod_ip else (),
        start_time=start_time,
        init_container_statuses=init,
        container_statuses=app,
        qos_class=qos_class(pod),
    )
