"""Probe and hook handlers: parsed from the spec, run once against a container.

``parse_probe`` validates a probe with upstream defaults (period 10 s, timeout 1 s, thresholds
1 and 3). ``parse_handler`` reads the action shared by probes and lifecycle hooks: ``exec``,
``httpGet``, ``tcpSocket``, ``grpc`` (probes) and ``sleep`` (hooks); named ports are resolved
against the container's ports. ``run_handler`` performs one action: exec through the runtime's
``exec_sync``, the network actions from inside the pod's network namespace
(``pykubelet.host.netns``).
"""

from __future__ import annotations

import asyncio
import enum
import ssl
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from pykubelet.api import Container
from pykubelet.core.errors import InvalidInput, PykubeletError
from pykubelet.host.netns import open_connection, relay
from pykubelet.runtime import ExecResult

__all__ = [
    "ExecAction",
    "ExecRunner",
    "GrpcAction",
    "Handler",
    "HttpGetAction",
    "Outcome",
    "ProbeResult",
    "ProbeSpec",
    "ProbeTarget",
    "SleepAction",
    "TcpSocketAction",
    "parse_handler",
    "parse_probe",
    "run_handler",
]

USER_AGENT = "kube-probe/1.20"
_MAX_BODY = 10 * 1024


class ExecRunner(Protocol):
    """The one runtime call probes and hooks need (``Runtime.exec_sync``)."""

    async def exec_sync(
        self, container_id: str, cmd: Sequence[str], timeout_s: float | None = None
    ) -> ExecResult: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class ExecAction:
    command: tuple[str, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class HttpGetAction:
    port: int
    path: str = "/"
    host: str = ""  # "" means the pod's IP
    scheme: str = "HTTP"
    headers: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class TcpSocketAction:
    port: int
    host: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class GrpcAction:
    port: int
    service: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class SleepAction:
    seconds: float


Handler = ExecAction | HttpGetAction | TcpSocketAction | GrpcAction | SleepAction


@dataclass(frozen=True, slots=True, kw_only=True)
class ProbeSpec:
    handler: Handler
    initial_delay_s: float = 0.0
    period_s: float = 10.0
    timeout_s: float = 1.0
    success_threshold: int = 1
    failure_threshold: int = 3
    termination_grace_period_s: float | None = None


class ProbeResult(enum.Enum):
    SUCCESS = "successful"  # the values are prober_probe_total's ``result`` label
    FAILURE = "failed"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True, kw_only=True)
class Outcome:
    result: ProbeResult
    output: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class ProbeTarget:
    """Where a handler acts: the container (exec) and the pod's network (the rest)."""

    container_id: str
    netns_path: str = ""  # "" for host-network pods
    pod_ip: str = ""


def _port(raw: object, container: Container, where: str) -> int:
    if isinstance(raw, int) and not isinstance(raw, bool):
        if not 1 <= raw <= 65535:
            raise InvalidInput("must be between 1 and 65535, inclusive", field=where)
        return raw
    if isinstance(raw, str) and raw:
        if raw.isdigit():
            return _port(int(raw), container, where)
        for p in container.ports:
            if isinstance(p, Mapping) and p.get("name") == raw:
                return _port(p.get("containerPort"), container, where)
        raise InvalidInput(f"no container port named {raw!r}", field=where)
    raise InvalidInput("Required value: a port number or name", field=where)


def _number(obj: Mapping[str, Any], key: str, default: int, minimum: int, where: str) -> int:
    value = obj.get(key, default)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise InvalidInput(f"must be an integer >= {minimum}", field=f"{where}.{key}")
    return value


def parse_handler(
    raw: Mapping[str, Any], container: Container, where: str, *, hook: bool = False
) -> Handler:
    """The single action of a probe (``hook=False``) or a lifecycle hook (``hook=True``)."""
    kinds = (
        ("exec", "httpGet", "tcpSocket", "sleep")
        if hook
        else ("exec", "httpGet", "tcpSocket", "grpc")
    )
    present = [k for k in kinds if raw.get(k) is not None]
    if len(present) != 1:
        raise InvalidInput(f"must specify exactly one of {', '.join(kinds)}", field=where)
    kind = present[0]
    body = raw[kind]
    at = f"{where}.{kind}"
    if not isinstance(body, Mapping):
        raise InvalidInput("must be an object", field=at)
    if kind == "exec":
        cmd = body.get("command")
        if not isinstance(cmd, list) or not cmd or not all(isinstance(c, str) for c in cmd):
            raise InvalidInput("Required value: a non-empty list of strings", field=f"{at}.command")
        return ExecAction(command=tuple(cmd))
    if kind == "sleep":
        return SleepAction(seconds=float(_number(body, "seconds", -1, 0, at)))
    port = _port(body.get("port"), container, f"{at}.port")
    if kind == "grpc":
        service = body.get("service") or ""
        if not isinstance(service, str):
            raise InvalidInput("must be a string", field=f"{at}.service")
        return GrpcAction(port=port, service=service)
    host = body.get("host") or ""
    if not isinstance(host, str):
        raise InvalidInput("must be a string", field=f"{at}.host")
    if kind == "tcpSocket":
        return TcpSocketAction(port=port, host=host)
    scheme = str(body.get("scheme") or "HTTP").upper()
    if scheme not in ("HTTP", "HTTPS"):
        raise InvalidInput(f"unsupported scheme {scheme!r}", field=f"{at}.scheme")
    path = body.get("path") or "/"
    if not isinstance(path, str):
        raise InvalidInput("must be a string", field=f"{at}.path")
    headers: list[tuple[str, str]] = []
    for i, h in enumerate(body.get("httpHeaders") or []):
        if not isinstance(h, Mapping) or not isinstance(h.get("name"), str) or not h["name"]:
            raise InvalidInput("needs a name", field=f"{at}.httpHeaders[{i}]")
        value = h.get("value", "")
        if any(c in str(value) + h["name"] for c in "\r\n"):
            raise InvalidInput("must not contain line breaks", field=f"{at}.httpHeaders[{i}]")
        headers.append((h["name"], str(value)))
    return HttpGetAction(
        port=port,
        path=path if path.startswith("/") else "/" + path,
        host=host,
        scheme=scheme,
        headers=tuple(headers),
    )


def parse_probe(
    raw: Mapping[str, Any], container: Container, where: str, *, needs_single_success: bool
) -> ProbeSpec:
    """A probe with upstream defaults; liveness and startup require ``successThreshold`` 1."""
    handler = parse_handler(raw, container, where)
    success = _number(raw, "successThreshold", 1, 1, where)
    if needs_single_success and success != 1:
        raise InvalidInput("must be 1", field=f"{where}.successThreshold")
    grace = raw.get("terminationGracePeriodSeconds")
    if grace is not None and (isinstance(grace, bool) or not isinstance(grace, int) or grace < 1):
        raise InvalidInput("must be greater than 0", field=f"{where}.terminationGracePeriodSeconds")
    return ProbeSpec(
        handler=handler,
        initial_delay_s=float(_number(raw, "initialDelaySeconds", 0, 0, where)),
        period_s=float(_number(raw, "periodSeconds", 10, 1, where)),
        timeout_s=float(_number(raw, "timeoutSeconds", 1, 1, where)),
        success_threshold=success,
        failure_threshold=_number(raw, "failureThreshold", 3, 1, where),
        termination_grace_period_s=float(grace) if grace is not None else None,
    )


def _host(action_host: str, target: ProbeTarget) -> str:
    return action_host or target.pod_ip or "127.0.0.1"


def _format_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


async def _http_get(action: HttpGetAction, target: ProbeTarget) -> Outcome:
    host = _host(action.host, target)
    tls = None
    if action.scheme == "HTTPS":
        tls = ssl.create_default_context()
        tls.check_hostname = False
        tls.verify_mode = ssl.CERT_NONE  # upstream probes skip verification too
    reader, writer = await open_connection(target.netns_path, host, action.port, tls=tls)
    try:
        names = {k.lower() for k, _ in action.headers}
        lines = [f"GET {action.path} HTTP/1.1"]
        if "host" not in names:
            lines.append(f"Host: {_format_host(host)}:{action.port}")
        if "user-agent" not in names:
            lines.append(f"User-Agent: {USER_AGENT}")
        if "accept" not in names:
            lines.append("Accept: */*")
        lines.extend(f"{k}: {v}" for k, v in action.headers)
        lines.append("Connection: close")
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        await writer.drain()
        status_line = await reader.readline()
        parts = status_line.decode("latin-1").split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit():
            return Outcome(result=ProbeResult.FAILURE, output="malformed HTTP response")
        code = int(parts[1])
        body = b""
        try:
            async with asyncio.timeout(0.5):
                head_and_body = await reader.read(_MAX_BODY)
            body = head_and_body.split(b"\r\n\r\n", 1)[-1]
        except TimeoutError:
            pass
        text = body.decode(errors="replace")
        if 200 <= code < 400:
            return Outcome(result=ProbeResult.SUCCESS, output=text)
        return Outcome(
            result=ProbeResult.FAILURE, output=f"HTTP probe failed with statuscode: {code}"
        )
    finally:
        writer.close()


async def _grpc(action: GrpcAction, target: ProbeTarget, timeout_s: float) -> Outcome:
    try:  # grpcio is heavy to import and an optional extra; only gRPC probes need it
        import grpc
        from grpc_health.v1 import health_pb2, health_pb2_grpc
    except ImportError as e:
        return Outcome(
            result=ProbeResult.FAILURE,
            output=f"gRPC probes need the grpc extra: pip install 'pykubelet[grpc]' ({e.name})",
        )

    host = _host("", target)
    async with relay(target.netns_path, host, action.port) as local_port:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{local_port}") as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            try:
                resp = await stub.Check(
                    health_pb2.HealthCheckRequest(service=action.service), timeout=timeout_s
                )
            except grpc.aio.AioRpcError as e:
                return Outcome(
                    result=ProbeResult.FAILURE,
                    output=f"failed to connect service {host}:{action.port}: {e.code().name}",
                )
    status = health_pb2.HealthCheckResponse.ServingStatus.Name(resp.status)
    if resp.status == health_pb2.HealthCheckResponse.SERVING:
        return Outcome(result=ProbeResult.SUCCESS, output=status)
    return Outcome(
        result=ProbeResult.FAILURE, output=f"service unhealthy (responded with {status!r})"
    )


async def run_handler(
    handler: Handler, target: ProbeTarget, runner: ExecRunner, *, timeout_s: float
) -> Outcome:
    """Run one action, bounded by ``timeout_s`` (a hung action is a failure, never a stall)."""
    try:
        async with asyncio.timeout(timeout_s):
            return await _run(handler, target, runner, timeout_s)
    except TimeoutError:
        return Outcome(result=ProbeResult.FAILURE, output=f"timeout after {timeout_s:g}s")
    except (OSError, PykubeletError) as e:  # refused, unreachable, container or netns gone
        _reraise_cancellation()
        return Outcome(result=ProbeResult.FAILURE, output=str(e) or type(e).__name__)


def _reraise_cancellation() -> None:
    """A runtime call that turned our cancellation into an error must not make the probe loop
    unstoppable: if this task is being cancelled, cancel."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


async def _run(
    handler: Handler, target: ProbeTarget, runner: ExecRunner, timeout_s: float
) -> Outcome:
    if isinstance(handler, ExecAction):
        res = await runner.exec_sync(target.container_id, handler.command, timeout_s)
        out = (res.stdout + res.stderr).decode(errors="replace")
        if res.exit_code == 0:
            return Outcome(result=ProbeResult.SUCCESS, output=out)
        return Outcome(
            result=ProbeResult.FAILURE,
            output=out or f"command {list(handler.command)} exited with {res.exit_code}",
        )
    if isinstance(handler, HttpGetAction):
        return await _http_get(handler, target)
    if isinstance(handler, TcpSocketAction):
        _, writer = await open_connection(
            target.netns_path, _host(handler.host, target), handler.port
        )
        writer.close()
        return Outcome(result=ProbeResult.SUCCESS)
    if isinstance(handler, GrpcAction):
        return await _grpc(handler, target, timeout_s)
    raise InvalidInput(f"{type(handler).__name__} is not a probe action", field="handler")
