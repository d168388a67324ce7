"""Options, SPDY negotiation, stream counts, status bytes and resize decoding, as upstream."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pykubelet.core.errors import InvalidInput
from pykubelet.streaming import (
    SPDY_REMOTECOMMAND_VERSIONS,
    HandshakeRefused,
    RemoteCommandOptions,
    RemoteProtocolError,
    ResizeDecoder,
    SpdyVersion,
    encode_status,
    exit_error_text,
    expected_spdy_streams,
    negotiate_spdy_protocol,
)


def test_only_the_value_1_means_true() -> None:
    opts = RemoteCommandOptions.from_query(
        {"output": ["1"], "input": ["true"], "error": ["0"], "command": ["ls", "-l"]}
    )
    assert (opts.stdin, opts.stdout, opts.stderr, opts.tty) == (False, True, False, False)
    assert opts.command == ("ls", "-l")


def test_no_stdio_is_upstreams_400_text() -> None:
    with pytest.raises(InvalidInput) as e:
        RemoteCommandOptions.from_query({"stdin": ["true"], "stdout": ["true"]})
    assert e.value.reason == "you must specify at least 1 of stdin, stdout, stderr"


def test_tty_drops_stderr() -> None:
    opts = RemoteCommandOptions.from_query({"error": ["1"], "tty": ["1"], "output": ["1"]})
    assert opts.stderr is False and opts.tty is True


def test_spdy_negotiation_texts() -> None:
    assert negotiate_spdy_protocol(
        ["v4.channel.k8s.io, channel.k8s.io"], SPDY_REMOTECOMMAND_VERSIONS
    ) == ("v4.channel.k8s.io")
    assert negotiate_spdy_protocol(
        ["v2.channel.k8s.io", "v4.channel.k8s.io"], SPDY_REMOTECOMMAND_VERSIONS
    ) == ("v2.channel.k8s.io")
    assert negotiate_spdy_protocol([], SPDY_REMOTECOMMAND_VERSIONS) == HandshakeRefused(
        status=400, body="unable to upgrade: X-Stream-Protocol-Version is required\n"
    )
    refused = negotiate_spdy_protocol(["v9", "v8"], SPDY_REMOTECOMMAND_VERSIONS)
    assert isinstance(refused, HandshakeRefused) and refused.status == 403
    assert refused.body == (
        "unable to upgrade: unable to negotiate protocol: client supports [v9 v8], server accepts "
        "[v4.channel.k8s.io v3.channel.k8s.io v2.channel.k8s.io channel.k8s.io]\n"
    )
    assert [v for _, v in refused.headers] == list(SPDY_REMOTECOMMAND_VERSIONS)


@pytest.mark.parametrize(
    ("version", "query", "count"),
    [
        (SpdyVersion.V4, {"input": ["1"], "output": ["1"], "error": ["1"]}, 4),
        (SpdyVersion.V4, {"input": ["1"], "output": ["1"], "tty": ["1"]}, 4),  # resize
        (SpdyVersion.V2, {"input": ["1"], "output": ["1"], "tty": ["1"]}, 3),  # no resize < v3
        (SpdyVersion.V3, {"output": ["1"], "error": ["1"], "tty": ["1"]}, 3),  # stderr dropped
    ],
)
def test_expected_stream_counts(
    version: SpdyVersion, query: dict[str, list[str]], count: int
) -> None:
    assert expected_spdy_streams(version, RemoteCommandOptions.from_query(query)) == count


def test_status_bytes_are_upstreams() -> None:
    assert encode_status(json_status=True, exit_code=0) == b'{"metadata":{},"status":"Success"}'
    assert encode_status(json_status=False, exit_code=0) is None
    err = exit_error_text(["sh", "-c", "exit 3"], 3)
    assert encode_status(json_status=True, exit_code=3, exit_error=err) == (
        b'{"metadata":{},"status":"Failure","message":"command terminated with non-zero exit code: '
        b'error executing command [sh -c exit 3], exit code 3","reason":"NonZeroExitCode",'
        b'"details":{"causes":[{"reason":"ExitCode","message":"3"}]}}'
    )
    assert encode_status(json_status=False, exit_code=3, exit_error=err) == (
        b"command terminated with non-zero exit code: "
        b"error executing command [sh -c exit 3], exit code 3"
    )
    assert encode_status(json_status=True, internal_error="boom <&>") == (
        b'{"metadata":{},"status":"Failure","message":"Internal error occurred: error executing '
        b'command in container: boom \\u003c\\u0026\\u003e","reason":"InternalError","details":'
        b'{"causes":[{"message":"error executing command in container: '
        b'boom \\u003c\\u0026\\u003e"}]},'
        b'"code":500}'
    )
    assert encode_status(json_status=False, internal_error="x", attach=True) == (
        b"Internal error occurred: error attaching to container: x"
    )


def test_resize_stream_of_concatenated_objects() -> None:
    dec = ResizeDecoder()
    assert dec.feed(b'{"Width":80,"Height":24}{"width":1') == [(80, 24)]
    assert dec.feed(b'00,"height":50}\n') == [(100, 50)]
    with pytest.raises(RemoteProtocolError):
        ResizeDecoder().feed(b'{"Width":-1,"Height":2}')
    with pytest.raises(RemoteProtocolError):
        ResizeDecoder().feed(b"[1]")


@given(st.binary(max_size=100))
def test_fuzz_resize(data: bytes) -> None:
    try:
        ResizeDecoder(max_buffer_bytes=64).feed(data)
    except RemoteProtocolError:
        pass
