"""``KubeletServers``: the listeners on 10250 (HTTPS), 10255 (read-only) and 10248 (health).

Construction does no I/O. ``run()`` binds every enabled listener, sets ``ready``, serves until
cancelled or ``stop()`` is called, then closes the listeners and sets ``done``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from typing import Any

from aiohttp import web

from pykubelet.security.certs import ensure_self_signed_serving_cert
from pykubelet.server.app import build_full_app, build_healthz_app, build_read_only_app
from pykubelet.server.listener import (
    ConnectionGuard,
    GuardedSite,
    raise_nofile_limit,
)
from pykubelet.server.settings import ServerBackends, ServerSettings
from pykubelet.server.tls import build_server_context
from pykubelet.server.tls_reload import ReloadingTLS

__all__ = ["KubeletServers"]

log = logging.getLogger(__name__)

# aiohttp's per-connection settings (the runner and the guarded site build handlers alike).
_HANDLER: dict[str, Any] = {
    "access_log": None,
    # Before authentication a client may send: a request line of 256 KiB (exec commands travel
    # in the query string; upstream allows 1 MiB for line and headers together), header fields
    # of 32 KiB, 64 header lines.
    "max_line_size": 256 << 10,
    "max_field_size": 32 << 10,
    "max_headers": 64,
}


class KubeletServers:
    """The kubelet's HTTP listeners. Ports: ``full_port``, ``read_only_port``, ``healthz_port``
    are the bound port numbers once ``ready`` is set (None when that listener is off).

    Port settings: 10250 ``port`` 0 means an ephemeral port; for ``read_only_port`` and
    ``healthz_port`` 0 means off (as upstream) and -1 an ephemeral port (tests)."""

    def __init__(self, settings: ServerSettings, backends: ServerBackends) -> None:
        self.settings = settings
        self.backends = backends
        self.ready = asyncio.Event()
        self.done = asyncio.Event()
        self.full_port: int | None = None
        self.read_only_port: int | None = None
        self.healthz_port: int | None = None
        self.ssl_context: ssl.SSLContext | None = None
        self.full_app: web.Application | None = None
        self.tls: ReloadingTLS | None = None
        self._stop = asyncio.Event()
        self._runners: list[web.AppRunner] = []
        # one set of connection caps across the three listeners
        self.guard = ConnectionGuard(backends.connection_limits)

    def stop(self) -> None:
        self._stop.set()

    def reload_tls(self) -> None:
        """Re-read the serving certificate, key and client CA from disk; new connections use
        them, open ones keep theirs. Raises ``InvalidInput`` (and keeps the old context) if the
        files are bad. The listener's own context stays in place and hands each handshake the
        latest one through its SNI callback. ``run()`` also does this by itself when the files
        change (checked every ``tls_reload_interval_s``)."""
        if self.tls is not None:
            self.tls.reload()

    def _tls_files(self) -> list[str]:
        s = self.settings
        if s.tls_cert_file and s.tls_private_key_file:
            files = [s.tls_cert_file, s.tls_private_key_file]
        else:
            pair = ensure_self_signed_serving_cert(s.cert_dir, s.node_name)
            files = [pair.cert_file, pair.key_file]
        return [*files, s.client_ca_file] if s.client_ca_file else files

    def _ssl_context(self) -> ssl.SSLContext:
        s = self.settings
        if s.tls_cert_file and s.tls_private_key_file:
            cert, key = s.tls_cert_file, s.tls_private_key_file
        else:
            pair = ensure_self_signed_serving_cert(s.cert_dir, s.node_name)
            cert, key = pair.cert_file, pair.key_file
        return build_server_context(
            cert_file=cert,
            key_file=key,
            client_ca_file=s.client_ca_file,
            min_version=s.tls_min_version,
            cipher_suites=s.tls_cipher_suites,
        )

    async def _start(
        self, app: web.Application, host: str, port: int, ctx: ssl.SSLContext | None
    ) -> int:
        runner = web.AppRunner(
            app, handle_signals=False, shutdown_timeout=1.0, handler_cancellation=True, **_HANDLER
        )
        await runner.setup()
        self._runners.append(runner)
        site = GuardedSite(
            runner, host, max(port, 0), guard=self.guard, ssl_context=ctx, handler_kwargs=_HANDLER
        )
        await site.start()
        addr = runner.addresses[0]
        return int(addr[1])

    async def run(self) -> None:
        s, b = self.settings, self.backends
        watcher: asyncio.Task[None] | None = None
        raise_nofile_limit()
        try:
            if s.enable_server:
                self.tls = ReloadingTLS(self._ssl_context, self._tls_files())
                self.ssl_context = self.tls.context
                if s.tls_reload_interval_s > 0:
                    watcher = asyncio.create_task(self.tls.run(s.tls_reload_interval_s))
                self.full_app = build_full_app(s, b)
                self.full_port = await self._start(
                    self.full_app, s.address, s.port, self.ssl_context
                )
                log.info("serving the kubelet API (HTTPS) on %s:%d", s.address, self.full_port)
            if s.read_only_port != 0:
                self.read_only_port = await self._start(
                    build_read_only_app(s, b), s.address, s.read_only_port, None
                )
                log.warning(
                    "read-only port %d is open WITHOUT authentication on %s: pods, stats "
                    "and metrics are readable by anyone who can reach it",
                    self.read_only_port,
                    s.address,
                )
            if s.healthz_port != 0:
                self.healthz_port = await self._start(
                    build_healthz_app(s, b), s.healthz_bind_address, s.healthz_port, None
                )
            self.ready.set()
            await self._stop.wait()
        finally:
            if watcher is not None:
                watcher.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await watcher
            for runner in reversed(self._runners):
                await runner.cleanup()
            self._runners.clear()
            self.done.set()
