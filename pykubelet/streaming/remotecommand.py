"""Exec/attach semantics shared by both transports: options, versions, stream counts, status.

Everything here is byte-exact with the upstream kubelet (reference §3.2-3.4, §7).
"""

from __future__ import annotations

import codecs
import enum
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from pykubelet.core.errors import InvalidInput
from pykubelet.streaming.errors import RemoteProtocolError

__all__ = [
    "HandshakeRefused",
    "RemoteCommandOptions",
    "ResizeDecoder",
    "SPDY_REMOTECOMMAND_VERSIONS",
    "SpdyVersion",
    "StreamType",
    "encode_status",
    "expected_spdy_streams",
    "negotiate_spdy_protocol",
    "exit_error_text",
]


class SpdyVersion(enum.Enum):
    V4 = "v4.channel.k8s.io"
    V3 = "v3.channel.k8s.io"
    V2 = "v2.channel.k8s.io"
    V1 = "channel.k8s.io"


SPDY_REMOTECOMMAND_VERSIONS: tuple[str, ...] = tuple(v.value for v in SpdyVersion)


class StreamType(enum.Enum):
    ERROR = "error"
    STDIN = "stdin"
    STDOUT = "stdout"
    STDERR = "stderr"
    RESIZE = "resize"
    DATA = "data"  # port-forward


@dataclass(frozen=True, slots=True, kw_only=True)
class RemoteCommandOptions:
    stdin: bool
    stdout: bool
    stderr: bool  # already False under tty, as upstream drops it
    tty: bool
    command: tuple[str, ...] = ()

    @classmethod
    def from_query(cls, query: Mapping[str, Sequence[str]]) -> RemoteCommandOptions:
        """Parse ``input``/``output``/``error``/``tty`` (only the value ``1`` is true) and argv."""

        def flag(name: str) -> bool:
            values = query.get(name, ())
            return bool(values) and values[0] == "1"

        tty = flag("tty")
        stdin, stdout, stderr = flag("input"), flag("output"), flag("error")
        if not (stdin or stdout or stderr):
            raise InvalidInput("you must specify at least 1 of stdin, stdout, stderr")
        return cls(
            stdin=stdin,
            stdout=stdout,
            stderr=stderr and not tty,
            tty=tty,
            command=tuple(query.get("command", ())),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class HandshakeRefused:
    """An upgrade we refuse: status, exact body and extra headers."""

    status: int
    body: str
    headers: tuple[tuple[str, str], ...] = ()


def negotiate_spdy_protocol(
    client_values: Sequence[str], server_versions: Sequence[str]
) -> str | HandshakeRefused:
    """Pick the first client-preferred version we accept (X-Stream-Protocol-Version)."""
    offered = [v.strip() for raw in client_values for v in raw.split(",") if v.strip()]
    if not offered:
        return HandshakeRefused(
            status=400, body="unable to upgrade: X-Stream-Protocol-Version is required\n"
        )
    for version in offered:
        if version in server_versions:
            return version
    body = (
        "unable to upgrade: unable to negotiate protocol: client supports "
        f"[{' '.join(offered)}], server accepts [{' '.join(server_versions)}]\n"
    )
    headers = tuple(("X-Accepted-Stream-Protocol-Versions", v) for v in server_versions)
    return HandshakeRefused(status=403, body=body, headers=headers)


def expected_spdy_streams(version: SpdyVersion, opts: RemoteCommandOptions) -> int:
    """error + requested stdio + resize (v3 and later, with a tty)."""
    resize = opts.tty and version in (SpdyVersion.V3, SpdyVersion.V4)
    return 1 + opts.stdin + opts.stdout + opts.stderr + resize


def exit_error_text(command: Sequence[str], exit_code: int) -> str:
    """The runtime's exit error as containerd words it (what upstream wraps in the status)."""
    return f"error executing command [{' '.join(command)}], exit code {exit_code}"


def _go_json(value: object) -> bytes:
    # encoding/json escapes HTML characters and the JS line separators; match it byte for byte.
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    for raw, esc in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026")):
        text = text.replace(raw, esc)
    return text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029").encode("utf-8")


def encode_status(
    *,
    json_status: bool,
    exit_code: int | None = None,
    exit_error: str = "",
    internal_error: str | None = None,
    attach: bool = False,
) -> bytes | None:
    """The bytes for the error stream/channel at the end, or None when nothing is written.

    ``json_status`` is v4/v5 (metav1.Status JSON, success included); older versions write the
    failure message as text and nothing on success.
    """
    if internal_error is not None:
        prefix = (
            "error attaching to container: " if attach else "error executing command in container: "
        )
        detail = prefix + internal_error
        message = "Internal error occurred: " + detail
        if not json_status:
            return message.encode("utf-8")
        return _go_json(
            {
                "metadata": {},
                "status": "Failure",
                "message": message,
                "reason": "InternalError",
                "details": {"causes": [{"message": detail}]},
                "code": 500,
            }
        )
    if not exit_code:
        return _go_json({"metadata": {}, "status": "Success"}) if json_status else None
    message = f"command terminated with non-zero exit code: {exit_error}"
    if not json_status:
        return message.encode("utf-8")
    return _go_json(
        {
            "metadata": {},
            "status": "Failure",
            "message": message,
            "reason": "NonZeroExitCode",
            "details": {"causes": [{"reason": "ExitCode", "message": str(exit_code)}]},
        }
    )


_SPACE = re.compile(r"[ \t\n\r]*")
RESIZE_MESSAGE_MAX = 1024  # a resize object is ~30 bytes; nothing legitimate comes near this


class ResizeDecoder:
    """Incremental decoder of concatenated ``{"Width":w,"Height":h}`` objects (keys any case).

    Linear in its input: each object is decoded in place from a moving offset, and only an
    unfinished tail (at most ``max_buffer_bytes``) is carried to the next ``feed``. A larger
    unfinished object is a protocol error, as is a chunk holding more than ``max_objects``."""

    def __init__(self, max_buffer_bytes: int = RESIZE_MESSAGE_MAX, max_objects: int = 4096) -> None:
        self._buf = ""
        self._max = max_buffer_bytes
        self._max_objects = max_objects
        self._json = json.JSONDecoder()
        self._utf8 = codecs.getincrementaldecoder("utf-8")()

    def feed(self, data: bytes) -> list[tuple[int, int]]:
        if len(self._buf) + len(data) > self._max and len(data) > self._max * self._max_objects:
            raise RemoteProtocolError("resize message too large")
        try:
            text = self._buf + self._utf8.decode(data)
        except UnicodeDecodeError:
            raise RemoteProtocolError("resize stream is not UTF-8") from None
        sizes: list[tuple[int, int]] = []
        pos, n = 0, len(text)
        while True:
            m = _SPACE.match(text, pos)
            pos = m.end() if m is not None else pos
            if pos >= n:
                self._buf = ""
                return sizes
            if text[pos] != "{":
                raise RemoteProtocolError("resize message is not a JSON object")
            window = text[pos : pos + self._max + 1]  # never parse more than one message's worth
            try:
                obj, end = self._json.raw_decode(window)
            except (json.JSONDecodeError, RecursionError):
                if len(window) > self._max:
                    raise RemoteProtocolError("resize message too large") from None
                self._buf = window
                return sizes
            pos += end
            if not isinstance(obj, dict):
                raise RemoteProtocolError("resize message is not a JSON object")
            keys = {str(k).lower(): v for k, v in obj.items()}
            width, height = keys.get("width", 0), keys.get("height", 0)
            if not all(isinstance(v, int) and 0 <= v <= 0xFFFF for v in (width, height)):
                raise RemoteProtocolError("resize Width/Height must be integers 0..65535")
            if len(sizes) >= self._max_objects:
                raise RemoteProtocolError("too many resize messages at once")
            sizes.append((width, height))
