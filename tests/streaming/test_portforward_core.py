"""Port-forward semantics: WS port parsing texts, the 2-byte prefix, SPDY pairing rules."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pykubelet.core.errors import InvalidInput
from pykubelet.streaming import (
    PairComplete,
    PairError,
    PairPending,
    PortForwardPairer,
    StreamRefused,
    parse_ws_ports,
    port_prefix,
    timeout_message,
)


def test_ports_repeated_and_comma_separated() -> None:
    assert parse_ws_ports(["80", "443,8080"]) == (80, 443, 8080)


@pytest.mark.parametrize(
    ("values", "text"),
    [
        ([], 'query parameter "port" is required'),
        ([""], 'query parameter "port" cannot be empty'),
        (["80,"], 'query parameter "port" cannot be empty'),
        (
            ["http"],
            'unable to parse "http" as a port: strconv.ParseUint: parsing "http": invalid syntax',
        ),
        (["-1"], 'unable to parse "-1" as a port: strconv.ParseUint: parsing "-1": invalid syntax'),
        (
            ["70000"],
            'unable to parse "70000" as a port: '
            'strconv.ParseUint: parsing "70000": value out of range',
        ),
        (["0"], 'port "0" must be > 0'),
    ],
)
def test_ws_port_errors_are_upstreams(values: list[str], text: str) -> None:
    with pytest.raises(InvalidInput) as e:
        parse_ws_ports(values)
    assert e.value.reason == text


def test_port_prefix_is_little_endian() -> None:
    assert port_prefix(8080) == b"\x90\x1f"


def test_pairing_by_request_id() -> None:
    p = PortForwardPairer()
    h = {"port": "80", "requestid": "7"}
    assert p.add_stream(1, [*h.items(), ("streamtype", "error")]) == PairPending(request_id="7")
    assert p.add_stream(3, [*h.items(), ("streamtype", "data")]) == PairComplete(
        request_id="7", port=80, data_stream_id=3, error_stream_id=1
    )
    assert p.pending() == ()


def test_pairing_fallback_without_request_id() -> None:
    p = PortForwardPairer()
    assert p.add_stream(5, [("port", "80"), ("streamtype", "error")]) == PairPending(request_id="5")
    assert isinstance(p.add_stream(7, [("port", "80"), ("streamtype", "data")]), PairComplete)


def test_duplicate_stream_type_message() -> None:
    p = PortForwardPairer()
    h = [("port", "80"), ("requestid", "1")]
    p.add_stream(1, [*h, ("streamtype", "error")])
    assert p.add_stream(3, [*h, ("streamtype", "error")]) == PairError(
        request_id="1",
        error_stream_id=1,
        message="error processing stream for request 1: error stream already assigned",
    )


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        ([("streamtype", "data")], '"port" header is required'),
        (
            [("port", "x"), ("streamtype", "data")],
            'unable to parse "x" as a port: strconv.ParseUint: parsing "x": invalid syntax',
        ),
        ([("port", "0"), ("streamtype", "data")], 'port "0" must be > 0'),
        ([("port", "80")], '"streamType" header is required'),
        ([("port", "80"), ("streamtype", "bogus")], 'invalid stream type "bogus"'),
    ],
)
def test_refused_streams(headers: list[tuple[str, str]], reason: str) -> None:
    assert PortForwardPairer().add_stream(1, headers) == StreamRefused(stream_id=1, reason=reason)


def test_timeout_text() -> None:
    assert timeout_message("0xc0", "3") == "(conn=0xc0, request=3) timed out waiting for streams"


@given(st.lists(st.text(max_size=12), max_size=4))
def test_fuzz_ws_ports_only_raise_invalid_input(values: list[str]) -> None:
    try:
        ports = parse_ws_ports(values)
    except InvalidInput:
        return
    assert all(0 < p < 65536 for p in ports)


@given(
    st.lists(
        st.tuples(st.sampled_from(["port", "streamtype", "requestid", "x"]), st.text(max_size=8)),
        max_size=5,
    )
)
def test_fuzz_pairing_never_raises(headers: list[tuple[str, str]]) -> None:
    p = PortForwardPairer()
    for sid in (1, 3, 5):
        p.add_stream(sid, headers)
