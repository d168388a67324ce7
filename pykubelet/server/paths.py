"""Which paths a port owns, before any authentication (reference §1.2, §8.8).

Upstream puts a Go ServeMux in front of go-restful: the mux cleans the path (301 to the clean
form), redirects a subtree root without its slash, and answers ``404 page not found`` for paths
nobody registered — all before the auth filter. Paths under a registered restful prefix are
authenticated first and only then routed (``404: Page Not Found`` when no route matches).
Sans-IO: pure functions over strings.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import quote, unquote

__all__ = [
    "DEBUG_DISABLED_PREFIXES",
    "PathClass",
    "PathTable",
    "clean_path",
    "decode_path",
    "escape_path",
    "full_port_table",
    "healthz_port_table",
    "is_valid_utf8",
    "read_only_port_table",
]


def decode_path(raw_path: str) -> str:
    """The percent-decoded path of a request target (query removed), as Go's ``URL.Path``."""
    return unquote(raw_path.partition("?")[0], errors="surrogateescape")


# Go's URL.EscapedPath (shouldEscape, encodePath) leaves unreserved characters and these as
# they are; everything else, ``!'()*`` included, is percent-encoded.
_PATH_SAFE = "/$&+,:;=@"


def escape_path(path: str) -> str:
    """A decoded path percent-encoded as Go's ``URL.EscapedPath`` writes it (undecodable bytes,
    kept as surrogates, are written back as the bytes they were)."""
    return quote(path.encode("utf-8", "surrogateescape"), safe=_PATH_SAFE)


def is_valid_utf8(path: str) -> bool:
    """False when the decoded path carries bytes that were not UTF-8 (kept as surrogates)."""
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def clean_path(p: str) -> str:
    """Go's ServeMux ``cleanPath``: ``path.Clean`` semantics, trailing slash kept."""
    if not p:
        return "/"
    if p[0] != "/":
        p = "/" + p
    out: list[str] = []
    for seg in p.split("/"):
        if seg in ("", "."):
            continue
        if seg == "..":
            if out:
                out.pop()
            continue
        out.append(seg)
    np = "/" + "/".join(out)
    if p.endswith("/") and np != "/":
        np += "/"
    return np


class PathClass(enum.Enum):
    OWNED = "owned"  # authenticate, then route
    REDIRECT = "redirect"  # subtree root without slash: 301 to root + "/"
    NOT_FOUND = "not-found"  # nobody registered it: 404 before auth


@dataclass(frozen=True, slots=True, kw_only=True)
class PathTable:
    exact: frozenset[str]  # mux handlers: /healthz, /metrics, /configz
    prefixes: frozenset[str]  # restful roots: /pods owns /pods and /pods/...
    subtrees: frozenset[str]  # /stats (registered as /stats/): /stats redirects

    def classify(self, path: str) -> PathClass:
        if path in self.exact:
            return PathClass.OWNED
        for p in self.prefixes:
            if path == p or path.startswith(p + "/"):
                return PathClass.OWNED
        for s in self.subtrees:
            if path.startswith(s + "/"):
                return PathClass.OWNED
            if path == s:
                return PathClass.REDIRECT
        return PathClass.NOT_FOUND

    def with_routes(self, route_paths: Iterable[str]) -> PathTable:
        """Add plugged-in routes: a templated path owns its top-level prefix; a static path is
        an exact mux entry, or a subtree when it ends with ``/``."""
        exact = set(self.exact)
        prefixes = set(self.prefixes)
        subtrees = set(self.subtrees)
        for rp in route_paths:
            if "{" in rp:
                top = "/" + rp.strip("/").split("/", 1)[0]
                if "{" not in top and top not in subtrees:
                    prefixes.add(top)
            elif rp.endswith("/") and rp != "/":
                subtrees.add(rp.rstrip("/"))
            else:
                exact.add(rp)
        return PathTable(
            exact=frozenset(exact), prefixes=frozenset(prefixes), subtrees=frozenset(subtrees)
        )


# Registered even when debugging handlers are off: they then answer 405 (upstream
# InstallDebuggingDisabledHandlers), on 10250 and always on 10255.
DEBUG_DISABLED_PREFIXES = (
    "/run",
    "/exec",
    "/attach",
    "/portForward",
    "/containerLogs",
    "/runningpods",
    "/debug/pprof",
    "/logs",
)

_HEALTHZ = ("/healthz", "/healthz/ping", "/healthz/log", "/healthz/syncloop")
_METRICS = ("/metrics", "/metrics/cadvisor", "/metrics/resource", "/metrics/probes")


def full_port_table(*, debugging: bool) -> PathTable:
    exact = {*_HEALTHZ, *_METRICS}
    if debugging:
        exact |= {"/configz", "/debug/flags/v"}
    return PathTable(
        exact=frozenset(exact),
        prefixes=frozenset({"/pods", "/exec", "/attach", "/portForward", "/run", "/containerLogs"}),
        subtrees=frozenset({"/stats", "/logs", "/runningpods", "/debug/pprof"}),
    )


def read_only_port_table() -> PathTable:
    return PathTable(
        exact=frozenset({*_HEALTHZ, *_METRICS}),
        prefixes=frozenset({"/pods", "/exec", "/attach", "/portForward", "/run", "/containerLogs"}),
        subtrees=frozenset({"/stats", "/logs", "/runningpods", "/debug/pprof"}),
    )


def healthz_port_table() -> PathTable:
    return PathTable(
        exact=frozenset({"/healthz", "/healthz/ping"}), prefixes=frozenset(), subtrees=frozenset()
    )
