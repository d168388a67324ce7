"""Probe actions against real servers and processes, and the probe loops' semantics."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from pykubelet.core.clock import FakeClock, SystemClock
from pykubelet.podspec.actions import (
    ExecAction,
    GrpcAction,
    HttpGetAction,
    ProbeResult,
    ProbeSpec,
    ProbeTarget,
    TcpSocketAction,
    run_handler,
)
from pykubelet.podspec.prober import Prober, ProbeType
from tests.conftest import free_port
from tests.podspec.netfix import netns
from tests.podspec.probefix import (
    HostExecRunner,
    Listener,
    Recorder,
    hanging_responder,
    http_responder,
    make_pod,
    serve,
    wait_until,
)
from tests.prereq import require_root

HOST = ProbeTarget(container_id="c1")


async def test_http_get_success_failure_and_headers() -> None:
    seen: list[bytes] = []
    runner = HostExecRunner()
    async with serve("", http_responder(200, seen)) as port:
        action = HttpGetAction(port=port, path="/healthz?x=1", headers=(("X-Custom", "yes"),))
        out = await run_handler(action, HOST, runner, timeout_s=5)
        assert out.result is ProbeResult.SUCCESS and out.output == "ok"
    head = seen[0].decode()
    assert head.startswith("GET /healthz?x=1 HTTP/1.1\r\n")
    assert f"Host: 127.0.0.1:{port}\r\n" in head
    assert "User-Agent: kube-probe/1.20\r\n" in head and "X-Custom: yes\r\n" in head
    async with serve("", http_responder(503, seen)) as port:
        out = await run_handler(HttpGetAction(port=port), HOST, runner, timeout_s=5)
        assert out.result is ProbeResult.FAILURE
        assert out.output == "HTTP probe failed with statuscode: 503"
    async with serve("", http_responder(302, seen)) as port:
        out = await run_handler(HttpGetAction(port=port), HOST, runner, timeout_s=5)
        assert out.result is ProbeResult.SUCCESS


async def test_tcp_and_exec_actions() -> None:
    runner = HostExecRunner()
    async with serve("", http_responder(200, [])) as port:
        out = await run_handler(TcpSocketAction(port=port), HOST, runner, timeout_s=5)
        assert out.result is ProbeResult.SUCCESS
    refused = await run_handler(TcpSocketAction(port=free_port()), HOST, runner, timeout_s=5)
    assert refused.result is ProbeResult.FAILURE
    ok = await run_handler(ExecAction(command=("sh", "-c", "echo fine")), HOST, runner, timeout_s=5)
    assert ok.result is ProbeResult.SUCCESS and ok.output == "fine\n"
    bad = await run_handler(
        ExecAction(command=("sh", "-c", "echo broken >&2; exit 3")), HOST, runner, timeout_s=5
    )
    assert bad.result is ProbeResult.FAILURE and bad.output == "broken\n"
    slow = await run_handler(ExecAction(command=("sleep", "30")), HOST, runner, timeout_s=1)
    assert slow.result is ProbeResult.FAILURE and slow.output == "timeout after 1s"


@pytest.fixture
async def grpc_health_server() -> AsyncIterator[tuple[int, health.HealthServicer]]:
    server = grpc.aio.server()
    servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        yield port, servicer
    finally:
        await server.stop(None)


async def test_grpc_health_probe(grpc_health_server: tuple[int, health.HealthServicer]) -> None:
    port, servicer = grpc_health_server
    runner = HostExecRunner()
    await servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    await servicer.set("db", health_pb2.HealthCheckResponse.NOT_SERVING)
    out = await run_handler(GrpcAction(port=port), HOST, runner, timeout_s=5)
    assert out.result is ProbeResult.SUCCESS
    out = await run_handler(GrpcAction(port=port, service="db"), HOST, runner, timeout_s=5)
    assert out.result is ProbeResult.FAILURE
    assert out.output == "service unhealthy (responded with 'NOT_SERVING')"
    out = await run_handler(GrpcAction(port=port, service="nope"), HOST, runner, timeout_s=5)
    assert out.result is ProbeResult.FAILURE and "NOT_FOUND" in out.output


@pytest.mark.root
async def test_network_probes_run_inside_the_pod_netns() -> None:
    require_root()
    with netns(lo_up=True) as ns:
        seen: list[bytes] = []
        target = ProbeTarget(container_id="c1", netns_path=ns)
        async with serve(ns, http_responder(200, seen)) as port:
            http = await run_handler(
                HttpGetAction(port=port), target, HostExecRunner(), timeout_s=5
            )
            assert http.result is ProbeResult.SUCCESS and len(seen) == 1
            tcp = await run_handler(
                TcpSocketAction(port=port), target, HostExecRunner(), timeout_s=5
            )
            assert tcp.result is ProbeResult.SUCCESS
        # the same port from the host namespace is another machine: nothing listens there now
        gone = await run_handler(TcpSocketAction(port=port), target, HostExecRunner(), timeout_s=5)
        assert gone.result is ProbeResult.FAILURE


async def test_a_hanging_probe_never_stalls_other_pods() -> None:
    clock = FakeClock()
    recorder, listener = Recorder(), Listener()
    prober = Prober(HostExecRunner(), clock, listener, recorder)
    accepted: list[int] = []
    async with (
        serve("", hanging_responder(accepted)) as hang_port,
        serve("", http_responder(200, [])) as ok_port,
    ):
        stuck = make_pod(
            "stuck", {"readinessProbe": {"httpGet": {"port": hang_port}, "timeoutSeconds": 60}}
        )
        fine = make_pod("fine", {"readinessProbe": {"tcpSocket": {"port": ok_port}}})
        prober.watch(stuck, stuck.spec.containers[0], ProbeTarget(container_id="stuck-c"))
        prober.watch(fine, fine.spec.containers[0], ProbeTarget(container_id="fine-c"))
        try:
            await wait_until(lambda: accepted != [])  # the stuck probe is in flight
            for n in range(1, 5):
                await wait_until(recorder.reached("fine", "Readiness", n))
                await clock.advance(10)  # the default period
            assert prober.ready("fine-c")
            assert recorder.count("stuck", "Readiness") == 0  # still hanging, on its own task
            assert not prober.ready("stuck-c")
        finally:
            await prober.close()


async def test_hung_probe_is_failed_after_its_timeout() -> None:
    recorder, listener = Recorder(), Listener()
    prober = Prober(HostExecRunner(), SystemClock(), listener, recorder)
    accepted: list[int] = []
    async with serve("", hanging_responder(accepted)) as port:
        pod = make_pod(
            "slow",
            {
                "livenessProbe": {
                    "tcpSocket": {"port": port},
                    "timeoutSeconds": 1,
                    "failureThreshold": 1,
                },
                "readinessProbe": {"httpGet": {"port": port}, "timeoutSeconds": 1},
            },
        )
        prober.watch(pod, pod.spec.containers[0], ProbeTarget(container_id="slow-c"))
        try:
            await wait_until(lambda: recorder.count("slow", "Readiness", "failed") >= 1)
            assert prober.result("slow-c", ProbeType.LIVENESS) is ProbeResult.SUCCESS
        finally:
            await prober.close()


async def test_liveness_failure_threshold_then_hold(tmp_path: Path) -> None:
    flag = tmp_path / "alive"
    flag.touch()
    clock = FakeClock()
    recorder, listener = Recorder(), Listener()
    prober = Prober(HostExecRunner(), clock, listener, recorder)
    pod = make_pod(
        "live",
        {
            "livenessProbe": {
                "exec": {"command": ["test", "-e", str(flag)]},
                "initialDelaySeconds": 5,
                "periodSeconds": 2,
                "failureThreshold": 2,
                "terminationGracePeriodSeconds": 7,
            }
        },
        grace=30,
    )
    prober.watch(pod, pod.spec.containers[0], ProbeTarget(container_id="live-c"))
    try:
        await asyncio.sleep(0.05)
        assert recorder.count("live", "Liveness") == 0  # initialDelaySeconds on the Clock
        await clock.advance(5)
        await wait_until(lambda: recorder.count("live", "Liveness", "successful") == 1)
        flag.unlink()
        await clock.advance(2)
        await wait_until(lambda: recorder.count("live", "Liveness", "failed") == 1)
        assert listener.changes == []  # one failure is below failureThreshold
        await clock.advance(2)
        await wait_until(lambda: listener.changes != [])
        change = listener.changes[0]
        assert change.probe_type is ProbeType.LIVENESS and change.result is ProbeResult.FAILURE
        assert change.container_id == "live-c" and change.grace_period_s == 7.0
        await clock.advance(20)  # on hold: no more runs until the container is restarted
        await asyncio.sleep(0.05)
        assert recorder.count("live", "Liveness") == 3
    finally:
        await prober.close()


async def test_startup_probe_holds_readiness_and_liveness(tmp_path: Path) -> None:
    flag = tmp_path / "started"
    clock = FakeClock()
    recorder, listener = Recorder(), Listener()
    prober = Prober(HostExecRunner(), clock, listener, recorder)
    pod = make_pod(
        "boot",
        {
            "startupProbe": {
                "exec": {"command": ["test", "-e", str(flag)]},
                "periodSeconds": 1,
                "failureThreshold": 30,
            },
            "readinessProbe": {
                "exec": {"command": ["true"]},
                "periodSeconds": 1,
                "successThreshold": 2,
            },
            "livenessProbe": {"exec": {"command": ["true"]}, "periodSeconds": 1},
        },
    )
    prober.watch(pod, pod.spec.containers[0], ProbeTarget(container_id="boot-c"))
    try:
        for n in range(1, 4):
            await wait_until(recorder.reached("boot", "Startup", n))
            await clock.advance(1)
        await wait_until(lambda: recorder.count("boot", "Startup") >= 4)
        assert recorder.count("boot", "Readiness") == recorder.count("boot", "Liveness") == 0
        assert not prober.started("boot-c") and not prober.ready("boot-c")
        flag.touch()
        await clock.advance(1)
        await wait_until(lambda: prober.started("boot-c"))
        await wait_until(lambda: recorder.count("boot", "Readiness") >= 1)
        assert not prober.ready("boot-c")  # successThreshold 2
        await clock.advance(1)
        await wait_until(lambda: prober.ready("boot-c"))
        startup_runs = recorder.count("boot", "Startup")
        await wait_until(lambda: recorder.count("boot", "Liveness") >= 1)
        await clock.advance(1)
        await wait_until(lambda: recorder.count("boot", "Liveness") >= 2)
        assert recorder.count("boot", "Startup") == startup_runs  # startup stops once passed
        types = [c.probe_type for c in listener.changes]
        assert types == [ProbeType.STARTUP, ProbeType.READINESS]
    finally:
        await prober.close()


async def test_readiness_drops_after_failures_and_recovers(tmp_path: Path) -> None:
    flag = tmp_path / "ready"
    flag.touch()
    clock = FakeClock()
    recorder, listener = Recorder(), Listener()
    prober = Prober(HostExecRunner(), clock, listener, recorder)
    spec = ProbeSpec(
        handler=ExecAction(command=("test", "-e", str(flag))), period_s=1, failure_threshold=1
    )
    pod = make_pod("rd", {})
    prober.watch(
        pod, pod.spec.containers[0], ProbeTarget(container_id="rd-c"), {ProbeType.READINESS: spec}
    )
    try:
        await wait_until(lambda: prober.ready("rd-c"))
        flag.unlink()
        await clock.advance(1)
        await wait_until(lambda: not prober.ready("rd-c"))
        flag.touch()
        await clock.advance(1)
        await wait_until(lambda: prober.ready("rd-c"))
        assert [c.result for c in listener.changes] == [
            ProbeResult.SUCCESS,
            ProbeResult.FAILURE,
            ProbeResult.SUCCESS,
        ]
    finally:
        await prober.close()
