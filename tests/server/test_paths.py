"""Pure path handling: Go's cleanPath and which paths a port owns (reference §8.8)."""

from __future__ import annotations

import pytest

from pykubelet.server.paths import (
    PathClass,
    clean_path,
    decode_path,
    full_port_table,
    healthz_port_table,
)


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("", "/"),
        ("/", "/"),
        ("pods", "/pods"),
        ("//pods", "/pods"),
        ("/pods/", "/pods/"),
        ("/pods//", "/pods/"),
        ("/pods/../healthz", "/healthz"),
        ("/../../healthz", "/healthz"),
        ("/a/./b/", "/a/b/"),
        ("/..", "/"),
        ("/a/b/..", "/a"),
        ("/a/b/../", "/a/"),
    ],
)
def test_clean_path(raw: str, clean: str) -> None:
    assert clean_path(raw) == clean


@pytest.mark.parametrize(
    ("raw", "decoded"),
    [
        ("/%70ods", "/pods"),
        ("/healthz%2Fping?x=%2F", "/healthz/ping"),
        ("/%2e%2e/healthz", "/../healthz"),
        ("/bad%zz", "/bad%zz"),
    ],
)
def test_decode_path(raw: str, decoded: str) -> None:
    assert decode_path(raw) == decoded


@pytest.mark.parametrize(
    ("path", "cls"),
    [
        ("/pods", PathClass.OWNED),
        ("/pods/x/y", PathClass.OWNED),
        ("/podsx", PathClass.NOT_FOUND),
        ("/healthz", PathClass.OWNED),
        ("/healthz/ping", PathClass.OWNED),
        ("/healthz/bar", PathClass.NOT_FOUND),
        ("/stats", PathClass.REDIRECT),
        ("/stats/", PathClass.OWNED),
        ("/stats/summary", PathClass.OWNED),
        ("/logs", PathClass.REDIRECT),
        ("/debug/pprof", PathClass.REDIRECT),
        ("/debug/flags/v", PathClass.OWNED),
        ("/configz", PathClass.OWNED),
        ("/exec", PathClass.OWNED),
        ("/", PathClass.NOT_FOUND),
        ("/checkpoint/a/b/c", PathClass.NOT_FOUND),
    ],
)
def test_full_port_ownership(path: str, cls: PathClass) -> None:
    assert full_port_table(debugging=True).classify(path) is cls


def test_debugging_off_unregisters_configz_and_flags() -> None:
    table = full_port_table(debugging=False)
    assert table.classify("/configz") is PathClass.NOT_FOUND
    assert table.classify("/debug/flags/v") is PathClass.NOT_FOUND
    assert table.classify("/exec/a/b/c") is PathClass.OWNED  # then 405 after auth


def test_plugged_in_routes_extend_the_table() -> None:
    table = full_port_table(debugging=True).with_routes(
        ["/checkpoint/{ns}/{pod}/{ctr}", "/metrics/slis", "/statusz", "/foo/"]
    )
    assert table.classify("/checkpoint/a/b/c") is PathClass.OWNED
    assert table.classify("/checkpoint") is PathClass.OWNED
    assert table.classify("/metrics/slis") is PathClass.OWNED
    assert table.classify("/statusz") is PathClass.OWNED
    assert table.classify("/foo") is PathClass.REDIRECT


def test_healthz_port_owns_two_paths() -> None:
    table = healthz_port_table()
    assert [table.classify(p) for p in ("/healthz", "/healthz/ping", "/healthz/log", "/pods")] == [
        PathClass.OWNED,
        PathClass.OWNED,
        PathClass.NOT_FOUND,
        PathClass.NOT_FOUND,
    ]
