"""kubectl-style output: column tables, human durations, the pod STATUS column (pure)."""

from __future__ import annotations

import datetime
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["format_table", "human_duration", "pod_row", "POD_COLUMNS", "POD_WIDE_COLUMNS"]

POD_COLUMNS = ("NAME", "READY", "STATUS", "RESTARTS", "AGE")
POD_WIDE_COLUMNS = (*POD_COLUMNS, "IP", "NODE", "NOMINATED NODE", "READINESS GATES")


def format_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Left-aligned columns separated by three spaces, as kubectl's printers."""
    widths = [max(len(str(r[i])) for r in (header, *rows)) for i in range(len(header))]
    lines = []
    for row in (header, *rows):
        cells = [str(c).ljust(w) for c, w in zip(row, widths, strict=True)]
        lines.append("   ".join(cells).rstrip())
    return "\n".join(lines) + "\n"


def human_duration(seconds: float) -> str:
    """apimachinery's ``duration.HumanDuration`` (the AGE column)."""
    s = int(seconds)
    if s < -1:
        return "<invalid>"
    if s < 0:
        return "0s"
    if s < 60 * 2:
        return f"{s}s"
    minutes = s // 60
    if minutes < 10:
        rest = s % 60
        return f"{minutes}m{rest}s" if rest else f"{minutes}m"
    if minutes < 60 * 3:
        return f"{minutes}m"
    hours = minutes // 60
    if hours < 8:
        rest = minutes % 60
        return f"{hours}h{rest}m" if rest else f"{hours}h"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        rest = hours % 24
        return f"{hours // 24}d{rest}h" if rest else f"{hours // 24}d"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    years = hours // 24 // 365
    if years < 8:
        days = (hours // 24) % 365
        return f"{years}y{days}d" if days else f"{years}y"
    return f"{years}y"


def _age(pod: Mapping[str, Any], now: datetime.datetime) -> str:
    stamp = pod.get("metadata", {}).get("creationTimestamp") or pod.get("status", {}).get(
        "startTime"
    )
    if not stamp:
        return "<unknown>"
    when = datetime.datetime.fromisoformat(str(stamp).replace("Z", "+00:00"))
    return human_duration((now - when).total_seconds())


def _status(pod: Mapping[str, Any]) -> str:
    """kubectl's printPod reason: phase, overridden by the pod reason, then by the state of a
    container that is not running (init containers first, as ``Init:<reason>``)."""
    status = pod.get("status", {})
    reason = status.get("reason") or status.get("phase") or "Unknown"
    inits = status.get("initContainerStatuses") or []
    for i, c in enumerate(inits):
        state = c.get("state", {})
        term = state.get("terminated")
        if term and term.get("exitCode") == 0:
            continue
        if term:
            reason = "Init:" + (term.get("reason") or f"ExitCode:{term.get('exitCode')}")
        elif state.get("waiting", {}).get("reason") not in (None, "", "PodInitializing"):
            reason = "Init:" + state["waiting"]["reason"]
        else:
            reason = f"Init:{i}/{len(pod.get('spec', {}).get('initContainers') or inits)}"
        return reason
    for c in reversed(status.get("containerStatuses") or []):
        state = c.get("state", {})
        if state.get("waiting", {}).get("reason"):
            reason = state["waiting"]["reason"]
        elif state.get("terminated", {}).get("reason"):
            reason = state["terminated"]["reason"]
        elif "terminated" in state:
            term = state["terminated"]
            reason = (
                f"Signal:{term['signal']}"
                if term.get("signal")
                else f"ExitCode:{term.get('exitCode')}"
            )
    if pod.get("metadata", {}).get("deletionTimestamp"):
        reason = "Terminating"
    return str(reason)


def pod_row(pod: Mapping[str, Any], now: datetime.datetime, *, wide: bool) -> list[str]:
    statuses = pod.get("status", {}).get("containerStatuses") or []
    total = len(pod.get("spec", {}).get("containers") or statuses)
    ready = sum(1 for c in statuses if c.get("ready"))
    restarts = sum(int(c.get("restartCount", 0)) for c in statuses)
    row = [
        pod["metadata"]["name"],
        f"{ready}/{total}",
        _status(pod),
        str(restarts),
        _age(pod, now),
    ]
    if wide:
        row += [
            pod.get("status", {}).get("podIP") or "<none>",
            pod.get("spec", {}).get("nodeName") or "<none>",
            "<none>",
            "<none>",
        ]
    return row
