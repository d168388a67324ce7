"""Fuzzing the parsers an attacker reaches (issue #14): SPDY frames and sessions, the WebSocket
channel codec, the resize decoder, the path cleaner and router, the pod manifest parser and the
token file parser. Invariant, as h11's fuzzer has it: a value or the parser's own error, never
another exception, never a hang (hypothesis' per-example deadline).

A bounded run here (``PYKUBELET_FUZZ_EXAMPLES``, default 300 per target); ``bench/bench_fuzz.py``
runs the same targets with many more examples.
"""

from __future__ import annotations

import asyncio
import os
import zlib
from typing import Any

import yaml
from aiohttp.base_protocol import BaseProtocol
from aiohttp.http_parser import HttpRequestParser
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pykubelet.api import Pod
from pykubelet.auth.tokenfile import parse_token_file
from pykubelet.core.errors import PykubeletError
from pykubelet.server.leanpath import Verdict, read_lean_head
from pykubelet.server.paths import (
    PathClass,
    clean_path,
    decode_path,
    escape_path,
    full_port_table,
    is_valid_utf8,
)
from pykubelet.streaming import (
    ProtocolError,
    RemoteProtocolError,
    ResizeDecoder,
    Role,
    SpdySession,
    WsChannelCodec,
    WsProtocol,
)
from pykubelet.streaming.spdy_dictionary import SPDY3_DICTIONARY
from pykubelet.streaming.spdy_frames import HeaderBlockDecoder, decode_frame

EXAMPLES = int(os.environ.get("PYKUBELET_FUZZ_EXAMPLES", "300"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=2000,  # ms: a parser that takes longer on a few KB is a hang
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    database=None,
)


def _frame(control: bool, kind: int, flags: int, body: bytes) -> bytes:
    head = (0x8003 << 16 | kind) if control else (kind & 0x7FFFFFFF)
    return head.to_bytes(4, "big") + bytes([flags]) + len(body).to_bytes(3, "big") + body


def _header_block(pairs: list[tuple[bytes, bytes]]) -> bytes:
    raw = len(pairs).to_bytes(4, "big")
    for k, v in pairs:
        raw += len(k).to_bytes(4, "big") + k + len(v).to_bytes(4, "big") + v
    z = zlib.compressobj(zdict=SPDY3_DICTIONARY)
    return z.compress(raw) + z.flush(zlib.Z_SYNC_FLUSH)


_frames = st.builds(
    _frame,
    st.booleans(),
    st.integers(0, 12) | st.integers(0, 0x7FFFFFFF),
    st.integers(0, 255),
    st.binary(max_size=64)
    | st.builds(
        lambda sid, pairs: sid.to_bytes(4, "big") + bytes(6) + _header_block(pairs),
        st.integers(0, 0x7FFFFFFF),
        st.lists(st.tuples(st.binary(max_size=12), st.binary(max_size=12)), max_size=4),
    ),
)


@FUZZ
@given(st.lists(_frames | st.binary(max_size=80), max_size=12), st.integers(1, 64))
def test_spdy_session(chunks: list[bytes], split: int) -> None:
    data = b"".join(chunks)
    session = SpdySession(Role.SERVER, max_header_block_bytes=16 << 10, max_open_streams=8)
    try:
        for i in range(0, len(data), split):
            session.receive_data(data[i : i + split])
        session.receive_data(b"")
    except ProtocolError:
        pass


@FUZZ
@given(st.binary(max_size=200))
def test_spdy_frame_decoder(data: bytes) -> None:
    decoder = HeaderBlockDecoder(16 << 10)
    pos = 0
    try:
        while pos < len(data):
            _, used = decode_frame(data, decoder, max_payload_bytes=1 << 16, offset=pos)
            if used == 0:
                break
            pos += used
    except ProtocolError:
        pass


@FUZZ
@given(st.sampled_from(list(WsProtocol)), st.binary(max_size=100) | st.text(max_size=100))
def test_websocket_channel_codec(protocol: WsProtocol, message: bytes | str) -> None:
    codec = WsChannelCodec(protocol)
    try:
        codec.decode(message)
    except RemoteProtocolError:
        pass


@FUZZ
@given(st.lists(st.binary(max_size=300), max_size=8))
def test_resize_decoder(chunks: list[bytes]) -> None:
    decoder = ResizeDecoder()
    for chunk in chunks:
        try:
            for w, h in decoder.feed(chunk):
                assert 0 <= w <= 0xFFFF and 0 <= h <= 0xFFFF
        except RemoteProtocolError:
            decoder = ResizeDecoder()


_path_chars = st.sampled_from(list("/.%2fF5cC0123456789abz?#;\\")) | st.characters()


@FUZZ
@given(st.text(_path_chars, max_size=60))
def test_path_cleaner_and_router(raw: str) -> None:
    path = clean_path(decode_path(raw))
    assert path.startswith("/")
    assert clean_path(path) == path  # idempotent
    assert "/../" not in path and "/./" not in path
    cls = full_port_table(debugging=True).classify(path)
    assert isinstance(cls, PathClass)
    if is_valid_utf8(path):
        assert decode_path(escape_path(path)) == path  # the redirect target decodes back


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)


def _manifest_like(body: Any, name: Any, containers: Any) -> Any:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"containers": containers, **(body if isinstance(body, dict) else {})},
    }


@FUZZ
@given(
    _json
    | st.builds(
        _manifest_like,
        _json,
        st.text(max_size=10) | _json,
        st.lists(st.dictionaries(st.sampled_from(["name", "image", "command", "ports", "env",
                                                  "resources", "tty"]), _json, max_size=5),
                 max_size=3),
    )
)  # fmt: skip
def test_manifest_parser(doc: Any) -> None:
    try:
        Pod.from_dict(doc)
    except PykubeletError:
        pass


@FUZZ
@given(st.text(max_size=300))
def test_manifest_yaml_text(text: str) -> None:
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError:
        return
    try:
        Pod.from_dict(doc)
    except PykubeletError:
        pass


@FUZZ
@given(st.text(st.sampled_from(list(',"\n\r abc01:-\t')) | st.characters(), max_size=200))
def test_token_file_parser(text: str) -> None:
    try:
        users = parse_token_file(text)
    except PykubeletError:
        return
    for user in users.values():
        assert user.name


_LEAN_TARGETS = frozenset({"/healthz"})
# Mostly well-formed pieces (so that many heads are accepted and compared with llhttp), with
# every odd one a recogniser must refuse mixed in.
_head_text = st.sampled_from(
    [*"aZ09-_:;, \t/?%", "\r\n", "\r", "\n", "\x00", "\x7f", "\xe9", "Host", "host: n"]
)
_head_lines = st.lists(st.lists(_head_text, max_size=6).map("".join), max_size=1)
_request_lines = st.sampled_from(
    ["GET /healthz HTTP/1.1"] * 12
    + ["GET /healthz HTTP/1.0"] * 3
    + ["GET /healthz?x HTTP/1.1", "get /healthz HTTP/1.1"]
    + ["GET /healthz HTTP/1.1 ", "GET /pods HTTP/1.1", "GET /healthz HTTP/1.1\r"]
)
_fields = st.lists(
    st.tuples(
        st.sampled_from(["Host", "host", "Connection", "X", "x", "User-Agent"] * 8)
        | st.sampled_from(["Content-Length", "Upgrade", "A b", "", "X\x00", "Ü"]),
        st.sampled_from([": ", ":"] * 16 + [" :", ":\t", "", ":\r\n "]),
        st.sampled_from(["n", "keep-alive", "Keep-Alive", "a b", " v\t", ""] * 10)
        | st.sampled_from(["close", "0", "\t", "\x01", "é", "\x7f", "a\rb"]),
    ),
    max_size=5,
)


@FUZZ
@given(
    _request_lines,
    st.sampled_from([True, True, True, False]),
    _fields,
    _head_lines,
    st.sampled_from(["\r\n\r\n"] * 12 + ["\r\n", "\n\n", "", "\r\n\n"]),
    st.binary(max_size=40),
)
def test_lean_request_head(
    line: str,
    host: bool,
    fields: list[tuple[str, str, str]],
    extra: list[str],
    end: str,
    tail: bytes,
) -> None:
    """The lean path's recogniser (server/leanpath.py) never raises, and what it accepts,
    aiohttp's own parser (llhttp, an independent implementation) reads the same way: one GET
    of the same target and version, the same headers, keep-alive."""
    lines = [line, *(["Host: n"] if host else []), *(f"{n}{c}{v}" for n, c, v in fields)]
    head = "\r\n".join([*lines, *extra]) + end
    buf = head.encode("utf-8") + tail
    got = read_lean_head(buf, _LEAN_TARGETS)
    if isinstance(got, Verdict):
        return
    lean, stop = got
    assert buf[stop - 4 : stop] == b"\r\n\r\n" and lean.target in _LEAN_TARGETS

    async def llhttp() -> Any:
        loop = asyncio.get_running_loop()
        parser = HttpRequestParser(BaseProtocol(loop), loop, 2**16, max_line_size=8190)
        messages, _, _ = parser.feed_data(buf[:stop])
        return messages

    messages = asyncio.run(llhttp())
    assert len(messages) == 1, buf
    msg = messages[0][0]
    assert (msg.method, msg.path, f"{msg.version.major}.{msg.version.minor}") == (
        "GET",
        lean.target,
        lean.version,
    )
    theirs = {k.lower(): ", ".join(msg.headers.getall(k)) for k in msg.headers}
    assert theirs == dict(lean.headers), buf
    assert not msg.should_close, buf


def test_manifest_with_a_non_string_map_key_is_invalid_input() -> None:
    """Found by bench/bench_fuzz.py (atheris, manifest_yaml_text): a YAML key ``1:`` in a map
    field made the manifest parser raise TypeError instead of naming the field."""
    text = (
        "apiVersion: v1\nkind: Pod\nmetadata: {name: web}\nspec:\n  containers:\n"
        "  - name: web\n    image: busybox\n    resources:\n"
        "      limits: {memory: 32Mi, 1: x}\n"
    )
    try:
        Pod.from_dict(yaml.safe_load(text))
    except PykubeletError as e:
        assert "spec.containers[0].resources.limits" in str(e), e
        assert "must be a string" in str(e)
    else:
        raise AssertionError("a non-string key was accepted")
