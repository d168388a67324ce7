"""The gRPC side of CRI: one channel to the runtime's socket, deadlines, and error kinds.

The channel reconnects by itself when containerd restarts (calls meanwhile fail with
``Unavailable`` → ``RuntimeUnavailable``). Deadlines follow the Go kubelet (``node-and-cri.md``
§8): ``T`` = runtimeRequestTimeout by default, 2T for RunPodSandbox, T + grace for StopContainer,
T + timeout for ExecSync, none for PullImage.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import grpc

from pykubelet.core.errors import InvalidInput
from pykubelet.runtime.cri.v1 import api_pb2_grpc
from pykubelet.runtime.errors import RuntimeFailure, RuntimeUnavailable

__all__ = ["CriClient", "parse_endpoint"]

MAX_MESSAGE_BYTES = 16 * 1024 * 1024  # the Go kubelet's receive limit
# containerd's CRI plugin while it loads its state after a (re)start (gRPC code Unknown)
NOT_INITIALIZED = "server is not initialized yet"


def parse_endpoint(endpoint: str) -> str:
    """``unix:///path`` (or a bare absolute path, as old kubelets accepted) → gRPC target."""
    if endpoint.startswith("unix://"):
        path = endpoint[len("unix://") :]
    elif endpoint.startswith("/"):
        path = endpoint
    else:
        raise InvalidInput(
            f"{endpoint!r}: only unix:///path/to/socket endpoints are supported",
            field="containerRuntimeEndpoint",
        )
    if not path.startswith("/"):
        raise InvalidInput(
            f"{endpoint!r}: the socket path must be absolute", field="containerRuntimeEndpoint"
        )
    return "unix://" + path


class CriClient:
    """Stubs for ``runtime.v1`` RuntimeService and ImageService on one channel."""

    def __init__(self, endpoint: str, *, request_timeout_s: float = 120.0) -> None:
        self.target = parse_endpoint(endpoint)
        self.timeout_s = request_timeout_s
        self._channel: grpc.aio.Channel | None = None
        self.runtime: Any = None
        self.images: Any = None

    def open(self) -> None:
        if self._channel is None:
            self._channel = grpc.aio.insecure_channel(
                self.target,
                options=[
                    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
                    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
                ],
            )
            self.runtime = api_pb2_grpc.RuntimeServiceStub(self._channel)  # type: ignore[no-untyped-call]
            self.images = api_pb2_grpc.ImageServiceStub(self._channel)  # type: ignore[no-untyped-call]

    async def close(self) -> None:
        if self._channel is not None:
            await self._channel.close()
            self._channel = None

    async def call(
        self,
        rpc: Callable[..., Any],
        request: Any,
        *,
        timeout_s: float | str | None = "default",
        not_found: type[RuntimeFailure] = RuntimeFailure,
        missing_ok: bool = False,
        failure: type[RuntimeFailure] = RuntimeFailure,
    ) -> Any:
        """Call ``rpc``. NotFound raises ``not_found`` (returns None with ``missing_ok``: the
        idempotent stop/remove calls), Unavailable and deadlines ``RuntimeUnavailable``, the
        rest ``failure`` with the runtime's message."""
        self.open()
        deadline = self.timeout_s if timeout_s == "default" else timeout_s
        assert deadline is None or isinstance(deadline, float | int)
        try:
            return await rpc(request, timeout=deadline)
        except grpc.aio.AioRpcError as e:
            code = e.code()
            details = e.details() or str(code)
            if code == grpc.StatusCode.NOT_FOUND:
                if missing_ok:
                    return None
                raise not_found(details) from None
            if code == grpc.StatusCode.UNAVAILABLE or details == NOT_INITIALIZED:
                raise RuntimeUnavailable(f"container runtime is unavailable: {details}") from None
            if code == grpc.StatusCode.DEADLINE_EXCEEDED:
                raise RuntimeUnavailable(
                    f"container runtime did not answer in time: {details}"
                ) from None
            raise failure(details) from None
