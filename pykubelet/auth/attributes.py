"""Map an HTTP request on 10250 to kubelet authorization attributes (reference §1.1).

Pure functions: ``attributes_for(method, path)`` says which verb and which subresources (in the
order they are to be tried) a request needs; ``attributes_list`` turns that into ``Attributes``
values for an authorizer.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from pykubelet.auth.types import Attributes, UserInfo

__all__ = ["RequestAttributes", "STREAMING_PREFIXES", "attributes_for", "attributes_list"]

_VERBS = {"POST": "create", "GET": "get", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}

# Streaming endpoints run commands or open sockets in a pod: they need ``create`` whatever the
# HTTP method (upstream 1.20 maps a WebSocket GET to ``get``; we deliberately do not).
STREAMING_PREFIXES = ("/exec", "/attach", "/run", "/portForward")

# (prefix, subresources to try in order). Fine-grained entries come first; the last entry of
# each tuple is what Kubernetes 1.20 used.
_FINE_GRAINED: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("/stats", ("stats",)),
    ("/metrics", ("metrics",)),
    ("/logs", ("log",)),
    ("/spec", ("spec",)),
    ("/checkpoint", ("checkpoint",)),
    ("/pods", ("pods", "proxy")),
    ("/runningpods", ("pods", "proxy")),
    ("/healthz", ("healthz", "proxy")),
    ("/configz", ("configz", "proxy")),
    ("/statusz", ("statusz", "proxy")),
)
_LEGACY: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("/stats", ("stats",)),
    ("/metrics", ("metrics",)),
    ("/logs", ("log",)),
    ("/spec", ("spec",)),
    ("/checkpoint", ("checkpoint",)),
)


@dataclass(frozen=True, slots=True, kw_only=True)
class RequestAttributes:
    """What a request asks for: a verb on ``nodes/<subresource>``; any subresource may allow it."""

    verb: str
    subresources: tuple[str, ...]

    @property
    def subresource(self) -> str:
        """The subresource reported in 403/500 bodies and logs: the last (broadest) one."""
        return self.subresources[-1]


def _is_subpath(path: str, prefix: str) -> bool:
    return path == prefix or path.startswith(prefix + "/")


def attributes_for(method: str, path: str, *, fine_grained: bool = True) -> RequestAttributes:
    """Verb and subresources for ``method`` on the (already cleaned) ``path``.

    Unknown paths map to ``proxy``, the broadest subresource, so they are never more open than
    a known one. HEAD/OPTIONS and other methods get the empty verb, as upstream.
    """
    # Every prefix above is one segment, so the answer depends on the first segment alone:
    # computed once per (method, segment) instead of once per request.
    root = path[: path.find("/", 1)] if path.find("/", 1) > 0 else path
    return _for_root(method, root, fine_grained)


@functools.lru_cache(maxsize=512)
def _for_root(method: str, root: str, fine_grained: bool) -> RequestAttributes:
    verb = _VERBS.get(method.upper(), "")
    if any(_is_subpath(root, p) for p in STREAMING_PREFIXES):
        verb = "create"
    for prefix, subresources in _FINE_GRAINED if fine_grained else _LEGACY:
        if _is_subpath(root, prefix):
            return RequestAttributes(verb=verb, subresources=subresources)
    return RequestAttributes(verb=verb, subresources=("proxy",))


def attributes_list(
    user: UserInfo, node_name: str, method: str, path: str, *, fine_grained: bool = True
) -> tuple[Attributes, ...]:
    """The ``Attributes`` to authorize, in order; the request is allowed if any is allowed."""
    ra = attributes_for(method, path, fine_grained=fine_grained)
    return tuple(
        Attributes(user=user, verb=ra.verb, name=node_name, subresource=s, path=path)
        for s in ra.subresources
    )
