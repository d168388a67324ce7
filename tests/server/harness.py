"""Test doubles and a running-server helper for the server tests. Everything real: TLS on
127.0.0.1, ephemeral ports, files in per-test temp dirs. The Runtime double answers only what
the server asks (sandboxes, containers, container_status)."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from pykubelet.api import Pod
from pykubelet.runtime.errors import ContainerNotFound
from pykubelet.runtime.types import (
    ContainerConfig,
    ContainerState,
    ContainerStatus,
    ExecResult,
    SandboxConfig,
    SandboxState,
    SandboxStatus,
    labels_match,
)
from pykubelet.security.certs import CertPair, create_ca, create_client_cert, create_serving_cert
from pykubelet.server import KubeletServers, ServerBackends, ServerSettings


class StaticPods:
    """A PodLister over a list the test sets."""

    def __init__(self, pods: Sequence[Pod] = ()) -> None:
        self.pods: tuple[Pod, ...] = tuple(pods)
        self.healthy = True

    def list_pods(self) -> Sequence[Pod]:
        return self.pods

    def get_pod(self, namespace: str, name: str) -> Pod | None:
        for p in self.pods:
            if p.meta.namespace == namespace and p.meta.name == name:
                return p
        return None

    def sync_loop_healthy(self) -> bool:
        return self.healthy


@dataclass
class TinyRuntime:
    """Only the read side of ``Runtime`` the server uses; lifecycle methods are not called."""

    sandboxes: list[SandboxStatus] = field(default_factory=list)
    containers: dict[str, ContainerStatus] = field(default_factory=dict)
    status_calls: int = 0

    def set_state(self, cid: str, state: ContainerState) -> None:
        self.containers[cid] = replace(self.containers[cid], state=state)

    async def list_pod_sandboxes(
        self, label_selector: Mapping[str, str] | None = None
    ) -> Sequence[SandboxStatus]:
        return [s for s in self.sandboxes if labels_match(s.labels, label_selector or {})]

    async def list_containers(self, sandbox_id: str | None = None) -> Sequence[ContainerStatus]:
        return [c for c in self.containers.values() if sandbox_id in (None, c.sandbox_id)]

    async def container_status(self, container_id: str) -> ContainerStatus:
        self.status_calls += 1
        try:
            return self.containers[container_id]
        except KeyError:
            raise ContainerNotFound(container_id) from None

    async def run_pod_sandbox(self, config: SandboxConfig) -> str:
        raise AssertionError("not used by the server")

    async def stop_pod_sandbox(self, sandbox_id: str) -> None:
        raise AssertionError("not used by the server")

    async def remove_pod_sandbox(self, sandbox_id: str) -> None:
        raise AssertionError("not used by the server")

    async def pod_sandbox_status(self, sandbox_id: str) -> SandboxStatus:
        raise AssertionError("not used by the server")

    async def create_container(
        self, sandbox_id: str, config: ContainerConfig, sandbox_config: SandboxConfig
    ) -> str:
        raise AssertionError("not used by the server")

    async def start_container(self, container_id: str) -> None:
        raise AssertionError("not used by the server")

    async def stop_container(self, container_id: str, timeout_s: float) -> None:
        raise AssertionError("not used by the server")

    async def remove_container(self, container_id: str) -> None:
        raise AssertionError("not used by the server")

    async def exec_sync(
        self, container_id: str, cmd: Sequence[str], timeout_s: float | None = None
    ) -> ExecResult:
        raise AssertionError("not used by the server")


def sandbox(sid: str, name: str, namespace: str = "default", uid: str = "") -> SandboxStatus:
    return SandboxStatus(
        id=sid,
        name=name,
        namespace=namespace,
        uid=uid or f"uid-{name}",
        attempt=0,
        state=SandboxState.READY,
        created_at=1.0,
    )


def container(
    cid: str,
    sandbox_id: str,
    name: str,
    *,
    state: ContainerState = ContainerState.RUNNING,
    log_path: str = "",
    image: str = "busybox",
) -> ContainerStatus:
    return ContainerStatus(
        id=cid,
        sandbox_id=sandbox_id,
        name=name,
        attempt=0,
        state=state,
        image=image,
        log_path=log_path,
    )


@dataclass(frozen=True)
class Pki:
    dir: Path
    ca: CertPair
    serving: CertPair
    admin: CertPair  # CN=admin, O=system:masters (signed by ca)
    rogue_ca: CertPair
    rogue: CertPair  # CN=admin signed by an untrusted CA

    def client_context(self, pair: CertPair | None) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cafile=self.ca.cert_file)
        if pair is not None:
            ctx.load_cert_chain(pair.cert_file, pair.key_file)
        return ctx


def make_pki(base: Path) -> Pki:
    ca = create_ca(str(base / "ca"))
    rogue_ca = create_ca(str(base / "rogue"), common_name="rogue-ca")
    return Pki(
        dir=base,
        ca=ca,
        serving=create_serving_cert(str(base / "ca"), "node-a", ca=ca),
        admin=create_client_cert(str(base / "ca"), "admin", ["system:masters"], ca=ca),
        rogue_ca=rogue_ca,
        rogue=create_client_cert(str(base / "rogue"), "admin", ["system:masters"], ca=rogue_ca),
    )


def settings_for(pki: Pki, **kw: object) -> ServerSettings:
    base: dict[str, object] = dict(
        node_name="node-a",
        address="127.0.0.1",
        port=0,
        read_only_port=0,
        healthz_port=-1,
        tls_cert_file=pki.serving.cert_file,
        tls_private_key_file=pki.serving.key_file,
        client_ca_file=pki.ca.cert_file,
        cert_dir=str(pki.dir / "selfsigned"),
    )
    base.update(kw)
    return ServerSettings(**base)  # type: ignore[arg-type]


@contextlib.asynccontextmanager
async def running(
    settings: ServerSettings, backends: ServerBackends
) -> AsyncIterator[KubeletServers]:
    servers = KubeletServers(settings, backends)
    task = asyncio.create_task(servers.run())
    try:
        async with asyncio.timeout(10):
            ready = asyncio.create_task(servers.ready.wait())
            done, _ = await asyncio.wait({ready, task}, return_when=asyncio.FIRST_COMPLETED)
            if task in done:
                ready.cancel()
                task.result()  # raises the start-up error
        yield servers
    finally:
        servers.stop()
        async with asyncio.timeout(10):
            with contextlib.suppress(asyncio.CancelledError):
                await task


@dataclass(frozen=True)
class Reply:
    status: int
    headers: dict[str, str]  # lower-case names
    body: bytes


def _fetch_blocking(
    port: int,
    target: str,
    method: str,
    ctx: ssl.SSLContext | None,
    headers: dict[str, str],
    body: bytes | None,
) -> Reply:
    import http.client

    conn: http.client.HTTPConnection
    if ctx is None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    else:
        conn = http.client.HTTPSConnection("127.0.0.1", port, timeout=10, context=ctx)
    try:
        conn.request(method, target, body=body, headers=headers)
        resp = conn.getresponse()
        data = resp.read()
        return Reply(resp.status, {k.lower(): v for k, v in resp.getheaders()}, data)
    finally:
        conn.close()


async def fetch(
    port: int,
    target: str,
    *,
    method: str = "GET",
    ctx: ssl.SSLContext | None = None,
    headers: dict[str, str] | None = None,
    body: bytes | None = None,
) -> Reply:
    """One request with the stdlib client: the target goes on the wire exactly as given."""
    return await asyncio.to_thread(
        _fetch_blocking, port, target, method, ctx, dict(headers or {}), body
    )


async def wait_until(cond: Callable[[], bool], timeout_s: float = 10.0) -> None:
    """Wait for a condition with a bounded deadline (no fixed sleep-then-assert)."""
    async with asyncio.timeout(timeout_s):
        while True:
            if cond():
                return
            await asyncio.sleep(0.005)
