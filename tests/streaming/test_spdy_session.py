"""SpdySession: a client and a server on a fake wire, state tables, limits, and fuzzing."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pykubelet.streaming import (
    DataReceived,
    GoAwayReceived,
    LocalProtocolError,
    PingReceived,
    RemoteProtocolError,
    ReplyReceived,
    Role,
    RstStatus,
    SessionClosed,
    SessionState,
    SpdyEvent,
    SpdySession,
    StreamOpened,
    StreamRejected,
    StreamReset,
    StreamState,
)
from pykubelet.streaming.spdy_frames import SynStreamFrame, WindowUpdateFrame, encode_frame


def _feed_all_ways(
    session_factory: Callable[[], SpdySession], wire: bytes
) -> list[list[SpdyEvent]]:
    """Events from feeding ``wire`` whole, byte by byte, and at every split point."""
    results: list[list[SpdyEvent]] = []
    whole = session_factory()
    results.append(whole.receive_data(wire))
    bytewise = session_factory()
    results.append([e for i in range(len(wire)) for e in bytewise.receive_data(wire[i : i + 1])])
    for cut in range(1, len(wire)):
        s = session_factory()
        results.append(s.receive_data(wire[:cut]) + s.receive_data(wire[cut:]))
    return results


def test_exec_conversation_between_client_and_server() -> None:
    client, server = SpdySession(Role.CLIENT), SpdySession(Role.SERVER)
    wire = b""
    ids = []
    for kind in ("error", "stdin", "stdout"):
        sid, data = client.send_syn_stream((("streamtype", kind),))
        ids.append(sid)
        wire += data
    wire += client.send_data(ids[1], b"input", fin=True)
    events = server.receive_data(wire)
    assert [type(e) for e in events] == [StreamOpened] * 3 + [DataReceived]
    assert ids == [1, 3, 5]
    assert isinstance(events[0], StreamOpened) and events[0].header("streamtype") == "error"
    assert events[3] == DataReceived(stream_id=3, data=b"input", fin=True)
    assert server.stream_state(3) is StreamState.HALF_CLOSED_REMOTE
    back = b"".join(server.send_syn_reply(i) for i in ids)
    back += server.send_data(5, b"output") + server.send_rst_stream(5)
    back += server.send_goaway()
    got = client.receive_data(back)
    assert [type(e) for e in got] == [ReplyReceived] * 3 + [
        DataReceived,
        StreamReset,
        GoAwayReceived,
    ]
    assert got[-1] == GoAwayReceived(last_good_stream_id=5, status=0)
    assert client.receive_data(b"") == [SessionClosed()]


def test_events_are_the_same_however_the_bytes_are_split() -> None:
    client = SpdySession(Role.CLIENT)
    wire = b""
    for kind in ("error", "stdin"):
        _, data = client.send_syn_stream((("streamtype", kind), ("requestid", "0")))
        wire += data
    wire += client.send_data(3, b"x" * 50) + client.send_ping()
    wire += encode_frame(WindowUpdateFrame(stream_id=1, delta=10))
    results = _feed_all_ways(lambda: SpdySession(Role.SERVER), wire)
    assert all(r == results[0] for r in results)
    assert results[0][-1] == PingReceived(ping_id=1, is_echo=False)


def test_ping_parity_says_whether_it_is_an_echo() -> None:
    server = SpdySession(Role.SERVER)
    ours = server.send_ping()
    assert server.receive_data(ours) == [PingReceived(ping_id=2, is_echo=True)]
    assert server.receive_data(server.send_ping(7)) == [PingReceived(ping_id=7, is_echo=False)]


def test_illegal_stream_ids_are_rejected_with_protocol_error() -> None:
    server = SpdySession(Role.SERVER)
    client = SpdySession(Role.CLIENT)
    _, first = client.send_syn_stream((("a", "b"),))
    client._next_local = 1  # replay id 1: lower than or equal to the last accepted
    _, again = client.send_syn_stream((("a", "b"),))
    events = server.receive_data(first + again)
    assert events[1] == StreamRejected(
        stream_id=1, status=RstStatus.PROTOCOL_ERROR, reason="invalid stream id"
    )
    even = encode_frame(SynStreamFrame(stream_id=4, headers=()), client._encoder)
    assert isinstance(server.receive_data(even)[0], StreamRejected)


def test_data_after_fin_is_rejected_and_unknown_streams_dropped() -> None:
    client, server = SpdySession(Role.CLIENT), SpdySession(Role.SERVER)
    sid, opened = client.send_syn_stream(())
    server.receive_data(opened + client.send_data(sid, b"", fin=True))
    late = b"\x00\x00\x00\x01\x00\x00\x00\x01z"
    assert server.receive_data(late) == [
        StreamRejected(stream_id=1, status=RstStatus.STREAM_ALREADY_CLOSED, reason="data after FIN")
    ]
    assert server.receive_data(b"\x00\x00\x00\x09\x00\x00\x00\x01z") == []


def test_illegal_local_moves_raise_and_leave_state_unchanged() -> None:
    client = SpdySession(Role.CLIENT)
    sid, _ = client.send_syn_stream((), fin=True)
    assert client.stream_state(sid) is StreamState.HALF_CLOSED_LOCAL
    with pytest.raises(LocalProtocolError):
        client.send_data(sid, b"more")
    assert client.stream_state(sid) is StreamState.HALF_CLOSED_LOCAL
    client.send_goaway()
    with pytest.raises(LocalProtocolError):
        client.send_syn_stream(())
    assert client.state is SessionState.DRAINING


def test_error_state_refuses_further_use() -> None:
    server = SpdySession(Role.SERVER)
    with pytest.raises(RemoteProtocolError):
        server.receive_data(b"\x80\x02\x00\x06\x00\x00\x00\x04\x00\x00\x00\x01")
    assert server.state is SessionState.ERROR
    with pytest.raises(LocalProtocolError):
        server.receive_data(b"")
    with pytest.raises(LocalProtocolError):
        server.send_ping()


def test_stream_limit_refuses_new_streams() -> None:
    client, server = SpdySession(Role.CLIENT), SpdySession(Role.SERVER, max_open_streams=1)
    wire = client.send_syn_stream(())[1] + client.send_syn_stream(())[1]
    events = server.receive_data(wire)
    assert events[1] == StreamRejected(
        stream_id=3, status=RstStatus.REFUSED_STREAM, reason="refused"
    )


def test_large_data_is_split_at_the_frame_limit() -> None:
    client = SpdySession(Role.CLIENT, max_frame_bytes=1000)
    server = SpdySession(Role.SERVER, max_frame_bytes=1000)
    sid, opened = client.send_syn_stream(())
    wire = opened + client.send_data(sid, b"a" * 2500, fin=True)
    events = server.receive_data(wire)[1:]
    assert [len(e.data) for e in events if isinstance(e, DataReceived)] == [1000, 1000, 500]
    assert [e.fin for e in events if isinstance(e, DataReceived)] == [False, False, True]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.binary(min_size=1, max_size=64), max_size=8))
def test_fuzz_any_input_yields_events_or_remote_error(chunks: list[bytes]) -> None:
    server = SpdySession(Role.SERVER, max_frame_bytes=4096, max_header_block_bytes=4096)
    try:
        for chunk in chunks:
            server.receive_data(chunk)
        server.receive_data(b"")
    except RemoteProtocolError:
        assert server.state is SessionState.ERROR


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=64), st.integers(min_value=0, max_value=63))
def test_fuzz_valid_prefix_then_garbage(garbage: bytes, cut: int) -> None:
    client = SpdySession(Role.CLIENT)
    wire = client.send_syn_stream((("streamtype", "stdin"),))[1] + client.send_data(1, b"x")
    server = SpdySession(Role.SERVER)
    try:
        server.receive_data(wire[: cut % len(wire)] + garbage)
    except RemoteProtocolError:
        pass
