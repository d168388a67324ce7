"""Serving certificate, key and client CA reloaded from disk without a restart.

The listener keeps the ``SSLContext`` it was started with (``ReloadingTLS.context``); that
context's SNI callback — called by OpenSSL on every ClientHello, with or without a server name —
moves each new connection onto the newest context. ``check()`` rebuilds the newest context when a
watched file's (inode, size, mtime) changes; ``run()`` checks every ``interval`` seconds.
Connections already established keep the certificate they were handshaken with. A half-written
or broken file never replaces a working context: the error is logged and counted
(``reload_errors``), and the next change is tried again.

Cipher policy lives with the context builder (``server/tls.py``): TLS 1.2 only with ECDHE and
AEAD suites, TLS 1.3 always allowed.
"""

from __future__ import annotations

import asyncio
import logging
import os
import ssl
from collections.abc import Callable, Sequence

from pykubelet.core.errors import PykubeletError

__all__ = ["ReloadingTLS"]

log = logging.getLogger(__name__)

_Stamp = tuple[int, int, int] | None


def _stamp(path: str) -> _Stamp:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_ino, st.st_size, st.st_mtime_ns)


class ReloadingTLS:
    """``build()`` makes a complete server context from the files in ``watch``."""

    def __init__(self, build: Callable[[], ssl.SSLContext], watch: Sequence[str]) -> None:
        self._build = build
        self._watch = tuple(p for p in watch if p)
        self._stamps = self._read_stamps()
        self.current = build()
        self.context = self.current  # what the listener is given, once
        self.context.sni_callback = self._select
        self.reloads = 0
        self.reload_errors = 0

    def _read_stamps(self) -> tuple[_Stamp, ...]:
        return tuple(_stamp(p) for p in self._watch)

    def _select(self, sslobj: ssl.SSLObject, server_name: str | None, _: ssl.SSLContext) -> None:
        if sslobj.context is not self.current:
            sslobj.context = self.current
        return None

    def reload(self) -> None:
        """Rebuild now; on failure raise (the builder's error) and keep the current context."""
        stamps = self._read_stamps()
        ctx = self._build()
        ctx.sni_callback = self._select
        self.current = ctx
        self._stamps = stamps
        self.reloads += 1
        log.info("TLS certificate/key/client CA reloaded from %s", ", ".join(self._watch))

    def check(self) -> bool:
        """Rebuild if any watched file changed; ``True`` when a new context is in force."""
        stamps = self._read_stamps()
        if stamps == self._stamps:
            return False
        try:
            self.reload()
        except (PykubeletError, OSError, ssl.SSLError, ValueError) as exc:
            # Keep serving with what works; a later change (the rest of the write) retries.
            self.reload_errors += 1
            log.error("TLS files changed but cannot be loaded, keeping the previous ones: %s", exc)
            self._stamps = stamps
            return False
        return True

    async def run(self, interval: float = 5.0) -> None:
        """Poll the files until cancelled."""
        while True:
            await asyncio.sleep(interval)
            self.check()
