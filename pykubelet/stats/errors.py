"""Errors of the stats package.

PykubeletError
└── InvalidInput
    └── CgroupParseError   (a cgroup or /proc file did not have the expected shape)
└── NotFound
    └── CgroupGone         (the cgroup or process vanished between listing and reading)
└── Unavailable
    └── StatsReadError     (a kernel file could not be read for another reason: EACCES, EIO)
"""

from __future__ import annotations

from pykubelet.core.errors import InvalidInput, NotFound, Unavailable

__all__ = ["CgroupGone", "CgroupParseError", "StatsReadError"]


class CgroupParseError(InvalidInput):
    """A kernel file had an unexpected shape; the message names the file kind."""


class CgroupGone(NotFound):
    """The cgroup or process disappeared; callers treat it as "no sample", not as a failure."""


class StatsReadError(Unavailable):
    """A kernel file exists but could not be read; the message names the path and errno."""
