"""The upstream kubelet v1.20, run beside others on one machine, with pod log folders of its own.

Its container GC deletes every ``/var/log/pods`` entry of a pod it does not know, so it would
delete other kubelets' (and other tests') pod logs on this machine. The benches run it in a
mount namespace of its own with private, empty ``/var/log/pods`` and ``/var/log/containers``
(containerd still writes the container logs to the real paths).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

__all__ = ["with_private_pod_logs"]

_SHARED = (Path("/var/log/pods"), Path("/var/log/containers"))


def with_private_pod_logs(private: Path, argv: Sequence[str]) -> list[str]:
    """``argv`` run with ``private/var-log-pods`` and ``private/var-log-containers`` bound over
    the machine's folders in a new mount namespace; the same process all along (``unshare``
    and ``sh`` exec), so the pid is the command's."""
    dirs = [private / "var-log-pods", private / "var-log-containers"]
    for d in (*dirs, *_SHARED):
        d.mkdir(parents=True, exist_ok=True)
    return [
        "unshare",
        "--mount",
        "--propagation",
        "private",
        "--",
        "sh",
        "-c",
        'mount --bind "$1" /var/log/pods && mount --bind "$2" /var/log/containers '
        '&& shift 2 && exec "$@"',
        "sh",
        *map(str, dirs),
        *argv,
    ]
