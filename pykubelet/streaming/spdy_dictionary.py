"""The SPDY/3 header-compression dictionary (draft-mbelshe-httpbis-spdy-00, section 2.6.10.1).

The draft defines it as a run of length-prefixed header words followed by a tail of common
values; we build it the same way and check it against the published digest at import time.
"""

from __future__ import annotations

import hashlib

__all__ = ["SPDY3_DICTIONARY", "SPDY3_DICTIONARY_SHA256"]

SPDY3_DICTIONARY_SHA256 = "51d27341373f923f3cd88e1eb7162aeaa3723d7585ff2399201dc06498407f02"

_WORDS = [
    *(
        "options head post put delete trace accept accept-charset accept-encoding accept-language "
        "accept-ranges age allow authorization cache-control connection content-base "
        "content-encoding content-language content-length content-location content-md5 "
        "content-range content-type date etag expect expires from host if-match if-modified-since "
        "if-none-match if-range if-unmodified-since last-modified location max-forwards pragma "
        "proxy-authenticate proxy-authorization range referer retry-after server te trailer "
        "transfer-encoding upgrade user-agent vary via warning www-authenticate method get status"
    ).split(),
    *("200 OK", "version", "HTTP/1.1", "url", "public", "set-cookie", "keep-alive", "origin"),
]

_TAIL = (
    "100101201202205206300302303304305306307402405406407408409410411412413414415416417502504505"
    "203 Non-Authoritative Information204 No Content301 Moved Permanently400 Bad Request"
    "401 Unauthorized403 Forbidden404 Not Found500 Internal Server Error501 Not Implemented"
    "503 Service UnavailableJan Feb Mar Apr May Jun Jul Aug Sept Oct Nov Dec 00:00:00 "
    "Mon, Tue, Wed, Thu, Fri, Sat, Sun, GMTchunked,text/html,image/png,image/jpg,image/gif,"
    "application/xml,application/xhtml+xml,text/plain,text/javascript,publicprivatemax-age="
    "gzip,deflate,sdchcharset=utf-8charset=iso-8859-1,utf-,*,enq=0."
)


def _build() -> bytes:
    out = bytearray()
    for word in _WORDS:
        out += len(word).to_bytes(4, "big") + word.encode("ascii")
    out += _TAIL.encode("ascii")
    return bytes(out)


SPDY3_DICTIONARY = _build()
if hashlib.sha256(SPDY3_DICTIONARY).hexdigest() != SPDY3_DICTIONARY_SHA256:  # pragma: no cover
    raise ImportError("SPDY/3 dictionary does not match its published sha256")
