"""The serving TLS context for 10250 (reference §2.5).

Client certificates are *requested*, never required, and an untrusted one must still reach the
application so it can answer 401 (as upstream's ``RequestClientCert`` does). Python's ``ssl``
can only verify during the handshake, and ``CERT_OPTIONAL`` refuses the handshake on an
untrusted certificate; so, on OpenSSL, we install a verify callback that accepts every chain
at the TLS layer — the x509 authenticator then verifies it against the client CA in the
application. If that callback cannot be installed safely, we fall back to ``CERT_OPTIONAL``
(untrusted certificates refused at the handshake), documented in docs/api.md.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import ssl
from typing import Any

from pykubelet.core.errors import InvalidInput

__all__ = [
    "CIPHER_SUITES",
    "STRONG_TLS12_CIPHERS",
    "accepts_untrusted_client_certs",
    "build_server_context",
]

log = logging.getLogger(__name__)

# IANA (Go) names → OpenSSL names, for the suites Go's crypto/tls implements for TLS ≤ 1.2.
CIPHER_SUITES: dict[str, str] = {
    "TLS_RSA_WITH_AES_128_CBC_SHA": "AES128-SHA",
    "TLS_RSA_WITH_AES_256_CBC_SHA": "AES256-SHA",
    "TLS_RSA_WITH_AES_128_CBC_SHA256": "AES128-SHA256",
    "TLS_RSA_WITH_AES_128_GCM_SHA256": "AES128-GCM-SHA256",
    "TLS_RSA_WITH_AES_256_GCM_SHA384": "AES256-GCM-SHA384",
    "TLS_RSA_WITH_3DES_EDE_CBC_SHA": "DES-CBC3-SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA": "ECDHE-ECDSA-AES128-SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA": "ECDHE-ECDSA-AES256-SHA",
    "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA": "ECDHE-RSA-AES128-SHA",
    "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA": "ECDHE-RSA-AES256-SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256": "ECDHE-ECDSA-AES128-SHA256",
    "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256": "ECDHE-RSA-AES128-SHA256",
    "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256": "ECDHE-RSA-AES128-GCM-SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256": "ECDHE-ECDSA-AES128-GCM-SHA256",
    "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384": "ECDHE-RSA-AES256-GCM-SHA384",
    "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384": "ECDHE-ECDSA-AES256-GCM-SHA384",
    "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256": "ECDHE-RSA-CHACHA20-POLY1305",
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256": "ECDHE-ECDSA-CHACHA20-POLY1305",
    "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305": "ECDHE-RSA-CHACHA20-POLY1305",
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305": "ECDHE-ECDSA-CHACHA20-POLY1305",
}
STRONG_TLS12_CIPHERS = "ECDHE+AESGCM:ECDHE+CHACHA20"

# TLS 1.3 suites are not configurable in Go either: accepted and ignored.
_TLS13_SUITES = frozenset(
    {"TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256"}
)

_MIN_VERSIONS = {
    "": ssl.TLSVersion.TLSv1_2,
    "VersionTLS12": ssl.TLSVersion.TLSv1_2,
    "VersionTLS13": ssl.TLSVersion.TLSv1_3,
}

_VERIFY_CB = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_int, ctypes.c_void_p)


def _libcrypto() -> Any:
    name = ctypes.util.find_library("crypto")
    try:
        return ctypes.CDLL(name) if name else None
    except OSError:
        return None


_CRYPTO = _libcrypto()


def _accept_any(preverify_ok: int, store_ctx: Any) -> int:
    # A failed check (e.g. a signature that does not verify) leaves an error on OpenSSL's
    # queue even though we accept; left there, the next read on the connection reports it
    # ("[ASN1] EVP lib") and the connection dies before the application can answer 401.
    if not preverify_ok and _CRYPTO is not None:
        _CRYPTO.ERR_clear_error()
    return 1


# Kept referenced for the life of the process: OpenSSL holds a pointer to this thunk.
_accept_any_chain = _VERIFY_CB(_accept_any)


def _ssl_ctx_pointer(ctx: ssl.SSLContext) -> int | None:
    """The ``SSL_CTX*`` inside CPython's ``_ssl._SSLContext`` (the first field after the object
    header), checked by reading back the verify mode through libssl before it is trusted."""
    name = ctypes.util.find_library("ssl")
    if not name or "OpenSSL" not in ssl.OPENSSL_VERSION:
        return None
    try:
        lib = ctypes.CDLL(name)
        get_mode = lib.SSL_CTX_get_verify_mode
    except (OSError, AttributeError):
        return None
    get_mode.restype = ctypes.c_int
    get_mode.argtypes = [ctypes.c_void_p]
    ptr = ctypes.c_void_p.from_address(id(ctx) + object.__basicsize__).value
    if not ptr:
        return None
    saved = ctx.verify_mode
    try:
        for mode, expect in ((ssl.CERT_NONE, 0), (ssl.CERT_OPTIONAL, 1), (ssl.CERT_REQUIRED, 3)):
            ctx.verify_mode = mode
            if get_mode(ptr) != expect:
                return None
    finally:
        ctx.verify_mode = saved
    return int(ptr)


def _install_accept_any(ctx: ssl.SSLContext) -> bool:
    ptr = _ssl_ctx_pointer(ctx)
    if ptr is None:
        return False
    lib = ctypes.CDLL(ctypes.util.find_library("ssl") or "libssl.so.3")
    set_verify = lib.SSL_CTX_set_verify
    set_verify.restype = None
    set_verify.argtypes = [ctypes.c_void_p, ctypes.c_int, _VERIFY_CB]
    set_verify(ptr, 1, _accept_any_chain)  # SSL_VERIFY_PEER: request, never require
    return True


def accepts_untrusted_client_certs(ctx: ssl.SSLContext) -> bool:
    """True when ``ctx`` lets an untrusted client certificate through to the application."""
    return bool(getattr(ctx, "_pk_accept_any", False))


def build_server_context(
    *,
    cert_file: str,
    key_file: str,
    client_ca_file: str = "",
    min_version: str = "",
    cipher_suites: tuple[str, ...] = (),
) -> ssl.SSLContext:
    """An SSLContext for the full port; ``InvalidInput`` names the bad field."""
    if min_version not in _MIN_VERSIONS:
        raise InvalidInput(
            f"unsupported TLS version {min_version!r} (supported: VersionTLS12, VersionTLS13)",
            field="tlsMinVersion",
        )
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = _MIN_VERSIONS[min_version]
    ctx.options |= ssl.OP_NO_RENEGOTIATION  # client-initiated renegotiation is a CPU sink
    # No TLS 1.3 session tickets (OpenSSL sends two per handshake): the API server's client
    # (client-go) keeps no session cache and opens a new connection for every exec, attach
    # and port-forward, so the tickets were a third of each handshake's CPU, thrown away.
    ctx.num_tickets = 0
    # TLS 1.2 without configured suites: ECDHE key exchange with AEAD only (no RSA key
    # exchange, no CBC, no 3DES); TLS 1.3 suites are all strong and not affected.
    ctx.set_ciphers(STRONG_TLS12_CIPHERS)
    if cipher_suites:
        unknown = [s for s in cipher_suites if s not in CIPHER_SUITES and s not in _TLS13_SUITES]
        if unknown:
            raise InvalidInput(
                f"unknown cipher suite name(s): {', '.join(unknown)}", field="tlsCipherSuites"
            )
        names = [CIPHER_SUITES[s] for s in cipher_suites if s in CIPHER_SUITES]
        if names:
            try:
                ctx.set_ciphers(":".join(names))
            except ssl.SSLError as e:
                raise InvalidInput(
                    f"no usable cipher suite in {list(cipher_suites)}: {e}",
                    field="tlsCipherSuites",
                ) from e
    try:
        ctx.load_cert_chain(cert_file, key_file)
    except (OSError, ssl.SSLError) as e:
        raise InvalidInput(
            f"cannot load serving certificate {cert_file!r} / key {key_file!r}: {e}",
            field="tlsCertFile",
        ) from e
    if client_ca_file:
        try:
            ctx.load_verify_locations(cafile=client_ca_file)  # names sent in CertificateRequest
        except (OSError, ssl.SSLError) as e:
            raise InvalidInput(
                f"cannot load client CA {client_ca_file!r}: {e}", field="clientCAFile"
            ) from e
        ctx.verify_mode = ssl.CERT_OPTIONAL
        if _install_accept_any(ctx):
            ctx._pk_accept_any = True  # type: ignore[attr-defined]
        else:
            log.warning(
                "cannot hand untrusted client certificates to the application on this TLS "
                "stack: they are refused at the handshake instead of answered 401"
            )
    return ctx
