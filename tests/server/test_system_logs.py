"""/logs/ file server and its switches (reference §1.2)."""

from __future__ import annotations

import os
from pathlib import Path

from pykubelet.server import ServerBackends
from tests.server.harness import Pki, StaticPods, TinyRuntime, fetch, running, settings_for


def backends() -> ServerBackends:
    return ServerBackends(pods=StaticPods(), runtime=TinyRuntime())


def make_tree(base: Path) -> Path:
    root = base / "varlog"
    (root / "sub").mkdir(parents=True)
    (root / "syslog").write_bytes(b"0123456789")
    (root / "sub" / "a.log").write_bytes(b"inner\n")
    (base / "secret").write_bytes(b"outside")
    os.symlink(base / "secret", root / "escape")
    return root


async def test_listing_files_ranges_and_escapes(tmp_path: Path, pki: Pki) -> None:
    root = make_tree(tmp_path)
    async with running(settings_for(pki, system_log_dir=str(root)), backends()) as s:
        assert s.full_port
        ctx = pki.client_context(pki.admin)
        r = await fetch(s.full_port, "/logs/", ctx=ctx)
        assert r.status == 200 and r.headers["content-type"] == "text/html; charset=utf-8"
        assert r.body == (
            b'<pre>\n<a href="escape">escape</a>\n<a href="sub/">sub/</a>\n'
            b'<a href="syslog">syslog</a>\n</pre>\n'
        )
        r = await fetch(s.full_port, "/logs/syslog", ctx=ctx)
        assert (r.status, r.body) == (200, b"0123456789")
        r = await fetch(s.full_port, "/logs/syslog", ctx=ctx, headers={"Range": "bytes=2-4"})
        assert (r.status, r.body) == (206, b"234")
        r = await fetch(s.full_port, "/logs/sub", ctx=ctx)
        assert (r.status, r.headers["location"]) == (301, "sub/")
        r = await fetch(s.full_port, "/logs/sub/a.log", ctx=ctx)
        assert r.body == b"inner\n"
        for p in ("/logs/escape", "/logs/nosuch"):
            r = await fetch(s.full_port, p, ctx=ctx)
            assert (r.status, r.body) == (404, b"404 page not found\n"), p
        r = await fetch(s.full_port, "/logs/../../etc/passwd", ctx=ctx)
        assert r.status == 301  # cleaned first
        r = await fetch(s.full_port, "/logs/", ctx=pki.client_context(None))
        assert r.status == 401


async def test_system_log_handler_disabled(tmp_path: Path, pki: Pki) -> None:
    root = make_tree(tmp_path)
    settings = settings_for(pki, system_log_dir=str(root), enable_system_log_handler=False)
    async with running(settings, backends()) as s:
        assert s.full_port
        r = await fetch(s.full_port, "/logs/syslog", ctx=pki.client_context(pki.admin))
        assert (r.status, r.body) == (405, b"logs endpoint is disabled.\n")
