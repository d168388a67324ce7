"""attributes_for, row by row against reference §1.1 (and the streaming `create` rule)."""

from __future__ import annotations

import pytest

from pykubelet.auth import UserInfo, attributes_for, attributes_list

ROWS = [
    # method, path, verb, fine-grained subresources, 1.20 subresource
    ("GET", "/stats/summary", "get", ("stats",), "stats"),
    ("POST", "/stats/summary", "create", ("stats",), "stats"),
    ("GET", "/stats", "get", ("stats",), "stats"),
    ("GET", "/statsfoo", "get", ("proxy",), "proxy"),  # prefix test is segment-wise
    ("GET", "/metrics", "get", ("metrics",), "metrics"),
    ("GET", "/metrics/cadvisor", "get", ("metrics",), "metrics"),
    ("GET", "/metrics/resource", "get", ("metrics",), "metrics"),
    ("GET", "/metrics/probes", "get", ("metrics",), "metrics"),
    ("DELETE", "/metrics/slis", "delete", ("metrics",), "metrics"),
    ("GET", "/logs/", "get", ("log",), "log"),
    ("GET", "/logs/syslog", "get", ("log",), "log"),
    ("GET", "/spec/", "get", ("spec",), "spec"),
    ("POST", "/checkpoint/ns/pod/c", "create", ("checkpoint",), "checkpoint"),
    ("GET", "/pods", "get", ("pods", "proxy"), "proxy"),
    ("GET", "/pods/", "get", ("pods", "proxy"), "proxy"),
    ("GET", "/runningpods/", "get", ("pods", "proxy"), "proxy"),
    ("GET", "/healthz", "get", ("healthz", "proxy"), "proxy"),
    ("GET", "/healthz/syncloop", "get", ("healthz", "proxy"), "proxy"),
    ("GET", "/configz", "get", ("configz", "proxy"), "proxy"),
    ("PUT", "/configz", "update", ("configz", "proxy"), "proxy"),
    ("GET", "/containerLogs/ns/pod/c", "get", ("proxy",), "proxy"),
    ("GET", "/debug/pprof/", "get", ("proxy",), "proxy"),
    ("PUT", "/debug/flags/v", "update", ("proxy",), "proxy"),
    ("PATCH", "/foo", "patch", ("proxy",), "proxy"),
    # streaming: create whatever the method (deliberate; 1.20 gives WebSocket GET `get`)
    ("GET", "/exec/ns/pod/c", "create", ("proxy",), "proxy"),
    ("POST", "/exec/ns/pod/c", "create", ("proxy",), "proxy"),
    ("GET", "/attach/ns/pod/c", "create", ("proxy",), "proxy"),
    ("GET", "/portForward/ns/pod", "create", ("proxy",), "proxy"),
    ("POST", "/run/ns/pod/c", "create", ("proxy",), "proxy"),
    ("HEAD", "/exec/ns/pod/c", "create", ("proxy",), "proxy"),
    ("GET", "/execute", "get", ("proxy",), "proxy"),
    # other methods: empty verb
    ("HEAD", "/pods", "", ("pods", "proxy"), "proxy"),
    ("OPTIONS", "/stats/summary", "", ("stats",), "stats"),
    ("CONNECT", "/healthz", "", ("healthz", "proxy"), "proxy"),
    ("get", "/pods", "get", ("pods", "proxy"), "proxy"),
]


@pytest.mark.parametrize(("method", "path", "verb", "fine", "legacy"), ROWS)
def test_row(method: str, path: str, verb: str, fine: tuple[str, ...], legacy: str) -> None:
    got = attributes_for(method, path)
    assert (got.verb, got.subresources) == (verb, fine)
    old = attributes_for(method, path, fine_grained=False)
    assert (old.verb, old.subresources) == (verb, (legacy,))
    assert got.subresource == legacy  # the reported (last) subresource matches 1.20


def test_attributes_list_names_the_node() -> None:
    user = UserInfo(name="alice", groups=("dev",))
    attrs = attributes_list(user, "node-a", "GET", "/pods")
    assert [(a.verb, a.resource, a.subresource, a.name, a.api_version) for a in attrs] == [
        ("get", "nodes", "pods", "node-a", "v1"),
        ("get", "nodes", "proxy", "node-a", "v1"),
    ]
    assert all(a.user is user and a.namespace == "" and a.api_group == "" for a in attrs)
