"""The lean path's HTTP/1.1, sans-IO: recognise the plainest requests, encode their answers.

Probes and scrapers send the same tiny request thousands of times a second (``GET /healthz``
on a keep-alive connection). Going through aiohttp's request, response and middleware objects
costs most of such a request's CPU, so the listener answers these itself (``listener.py``)
and lets aiohttp parse everything else.

This is not an HTTP parser. ``read_lean_head`` accepts one narrow shape and declines
everything else, untouched, to aiohttp's parser (llhttp): another method, a target not in the
lean set or with a query, any body, an upgrade, ``Expect``, ``Connection: close``, HTTP/1.0
without keep-alive, HTTP/1.1 without a ``Host``, a repeated single-valued field, bytes
outside printable ASCII, folded or malformed header lines, more header lines than aiohttp
allows, or a head longer than ``MAX_LEAN_HEAD``. What is declined is answered exactly as
before; what is accepted is answered with the bytes aiohttp would write, and llhttp reads it
as the same request (``tests/security/test_fuzz.py``, ``bench/bench_fuzz.py``).
"""

from __future__ import annotations

import enum
import functools
import re
import time
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from email.utils import formatdate
from http import HTTPStatus

__all__ = [
    "MAX_LEAN_HEAD",
    "LeanAnswer",
    "LeanHead",
    "Verdict",
    "encode_answer",
    "http_date",
    "read_lean_head",
]

MAX_LEAN_HEAD = 8192  # a probe's head is ~100 bytes; anything longer is aiohttp's to judge
MAX_LEAN_HEADERS = 64  # aiohttp's max_headers on every port (servers.py)


class Verdict(enum.Enum):
    NEED_MORE = "need more bytes"
    DECLINE = "not a lean request"


@dataclass(frozen=True, slots=True)
class LeanHead:
    """An accepted request head. ``headers``: lower-case names, repeats joined with ", " (the
    form authenticators read, ``auth.types.RequestInfo``); ``version`` "1.1" or "1.0" (1.0
    only with ``Connection: keep-alive``, which the answer then repeats)."""

    method: str
    target: str
    version: str
    headers: Mapping[str, str]  # shared by every request with the same head: read only


@dataclass(frozen=True, slots=True)
class LeanAnswer:
    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes


_GET = b"GET "
_END = b"\r\n\r\n"
# The whole head (without its blank line): a request line with a target of visible ASCII, then
# at most MAX_LEAN_HEADERS fields, each an RFC 9110 token, a colon and a value of printable
# ASCII or HTAB. Controls, bytes >= 0x80, folded lines, a space before the colon: no match.
_TOKEN = rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"
_HEAD = re.compile(
    rb"GET ([\x21-\x7e]+) HTTP/1\.([01])((?:\r\n"
    + _TOKEN
    + rb":[\x20-\x7e\t]*){0,%d})" % MAX_LEAN_HEADERS
)
_FIELD = re.compile(rb"\r\n(" + _TOKEN + rb"):[ \t]*([\x20-\x7e\t]*?)[ \t]*(?=\r\n|$)")
# fields that may appear once (RFC 9110); aiohttp refuses a request repeating one
_SINGLE = frozenset(
    {
        "content-length",
        "content-location",
        "content-range",
        "content-type",
        "etag",
        "host",
        "max-forwards",
        "server",
        "transfer-encoding",
        "user-agent",
    }
)
# headers whose presence means a body, a protocol switch or an expectation: aiohttp's to handle
_NOT_LEAN = frozenset({"content-length", "transfer-encoding", "upgrade", "expect"})


def read_lean_head(
    buf: bytes | bytearray, targets: Collection[str]
) -> tuple[LeanHead, int] | Verdict:
    """The lean request at the start of ``buf`` and where it ends; or whether more bytes could
    make one (``NEED_MORE``) or never can (``DECLINE``). Pure: no state, no I/O."""
    if not _GET.startswith(bytes(buf[:4])):
        return Verdict.DECLINE
    end = buf.find(_END, 0, MAX_LEAN_HEAD + len(_END))
    if end < 0:
        return Verdict.NEED_MORE if len(buf) < MAX_LEAN_HEAD + len(_END) else Verdict.DECLINE
    head = _lean_head(bytes(buf[:end]))
    if head is None or head.target not in targets:
        return Verdict.DECLINE
    return head, end + len(_END)


@functools.lru_cache(maxsize=256)
def _lean_head(head: bytes) -> LeanHead | None:
    """The head's meaning, or None if it is not lean. A pure function of the bytes, so a
    client repeating its request (a probe, a scraper) is parsed once."""
    m = _HEAD.fullmatch(head)
    if m is None:
        return None
    headers: dict[str, str] = {}
    for name, value in _FIELD.findall(m.group(3)):
        key, text = name.decode("ascii").lower(), value.decode("ascii")
        if key in headers:
            if key in _SINGLE:
                return None  # a repeated single-valued field: aiohttp answers 400
            text = headers[key] + ", " + text
        headers[key] = text
    if not _NOT_LEAN.isdisjoint(headers):
        return None
    version = "1." + m.group(2).decode("ascii")
    if version == "1.1" and "host" not in headers:
        return None  # HTTP/1.1 needs a Host: aiohttp answers 400, as Go does
    connection = headers.get("connection", "").lower()
    if connection not in ("", "keep-alive") or (version == "1.0" and connection != "keep-alive"):
        return None
    return LeanHead("GET", m.group(1).decode("ascii"), version, headers)


class _DateCache:
    """The ``Date`` value, formatted once per second (as aiohttp does)."""

    __slots__ = ("_second", "_value")

    def __init__(self) -> None:
        self._second = -1
        self._value = ""

    def __call__(self) -> str:
        now = int(time.time())
        if now != self._second:
            self._second, self._value = now, formatdate(now, usegmt=True)
        return self._value


http_date = _DateCache()


def encode_answer(answer: LeanAnswer, version: str) -> bytes:
    """The response as aiohttp writes it for these answers: the status line, the answer's
    headers, ``Content-Length``, ``Date``, and ``Connection: keep-alive`` for HTTP/1.0 (no
    ``Server`` header, as ``app._go_headers`` arranges for every other answer). The same
    answer within a second is the same bytes: encoded once."""
    return _encoded(answer, version, http_date())


@functools.lru_cache(maxsize=64)
def _encoded(answer: LeanAnswer, version: str, date: str) -> bytes:
    reason = HTTPStatus(answer.status).phrase
    lines = [f"HTTP/{version} {answer.status} {reason}"]
    lines.extend(f"{k}: {v}" for k, v in answer.headers)
    lines.append(f"Content-Length: {len(answer.body)}")
    lines.append(f"Date: {date}")
    if version == "1.0":
        lines.append("Connection: keep-alive")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + answer.body
