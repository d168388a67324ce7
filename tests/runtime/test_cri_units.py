"""The CRI runtime's pure parts: message conversion, the exec status, log rotation, endpoints,
gRPC errors."""

from __future__ import annotations

import grpc
import pytest

from pykubelet.core.errors import InvalidInput
from pykubelet.runtime import (
    ContainerConfig,
    LinuxResources,
    Mount,
    NamespaceMode,
    PortMapping,
    SandboxConfig,
    SecurityConfig,
)
from pykubelet.runtime.cri.client import CriClient, parse_endpoint
from pykubelet.runtime.cri.convert import (
    container_config,
    image_info,
    sandbox_config,
    sandbox_status,
)
from pykubelet.runtime.cri.streams import parse_exit_status
from pykubelet.runtime.cri.v1 import api_pb2 as pb
from pykubelet.runtime.errors import (
    ContainerNotFound,
    CreateContainerError,
    RuntimeFailure,
    RuntimeUnavailable,
)

SANDBOX = SandboxConfig(
    name="web",
    namespace="prod",
    uid="u-1",
    attempt=2,
    hostname="web",
    log_directory="/var/log/pods/prod_web_u-1",
    network=NamespaceMode.NODE,
    pid=NamespaceMode.POD,
    cgroup_parent="pykubelet/podu-1",
    port_mappings=(PortMapping(container_port=80, host_port=8080, protocol="UDP"),),
    labels={"io.kubernetes.pod.uid": "u-1"},
    annotations={"a": "b"},
)


def test_sandbox_config_is_what_the_go_kubelet_sends() -> None:
    msg = sandbox_config(SANDBOX)
    assert (msg.metadata.name, msg.metadata.namespace, msg.metadata.uid, msg.metadata.attempt) == (
        "web",
        "prod",
        "u-1",
        2,
    )
    assert msg.linux.cgroup_parent == "/pykubelet/podu-1"  # cgroupfs: absolute
    ns = msg.linux.security_context.namespace_options
    assert (ns.network, ns.pid, ns.ipc) == (pb.NODE, pb.POD, pb.POD)
    assert msg.linux.security_context.seccomp.profile_type == pb.SecurityProfile.RuntimeDefault
    (pm,) = msg.port_mappings
    assert (pm.protocol, pm.container_port, pm.host_port) == (pb.UDP, 80, 8080)
    assert msg.log_directory == "/var/log/pods/prod_web_u-1"
    assert dict(msg.annotations) == {"a": "b", "pykubelet.io/cgroup-parent": "pykubelet/podu-1"}


def test_container_config_carries_command_env_mounts_limits_and_identity() -> None:
    cfg = ContainerConfig(
        name="app",
        attempt=3,
        image="busybox",
        command=("sh",),
        args=("-c", "true"),
        envs=(("A", "1"), ("B", "2")),
        mounts=(Mount(container_path="/data", host_path="/srv/data", readonly=True),),
        log_path="app/3.log",
        resources=LinuxResources(
            cpu_quota_us=50000, cpu_period_us=100000, memory_limit_bytes=1 << 26
        ),
        security=SecurityConfig(run_as_user=1000, readonly_rootfs=True),
    )
    msg = container_config(cfg, SANDBOX)
    assert (msg.metadata.name, msg.metadata.attempt, msg.image.image) == ("app", 3, "busybox")
    assert (list(msg.command), list(msg.args)) == (["sh"], ["-c", "true"])
    assert [(e.key, e.value) for e in msg.envs] == [("A", "1"), ("B", "2")]
    assert [(m.container_path, m.host_path, m.readonly) for m in msg.mounts] == [
        ("/data", "/srv/data", True)
    ]
    r = msg.linux.resources
    assert (r.cpu_quota, r.cpu_period, r.memory_limit_in_bytes) == (50000, 100000, 1 << 26)
    sc = msg.linux.security_context
    assert sc.run_as_user.value == 1000 and not sc.HasField("run_as_group")
    assert sc.readonly_rootfs and msg.log_path == "app/3.log"
    assert sc.seccomp.profile_type == pb.SecurityProfile.Unconfined  # 1.20: none asked for


def test_seccomp_profiles_travel_as_cri_security_profiles() -> None:
    def sent(sec: SecurityConfig) -> tuple[int, str]:
        got = container_config(ContainerConfig(name="c", security=sec), SANDBOX)
        p = got.linux.security_context.seccomp
        return p.profile_type, p.localhost_ref

    local = SecurityConfig(seccomp="Localhost", seccomp_localhost_ref="/var/lib/k/seccomp/a.json")
    assert sent(local) == (pb.SecurityProfile.Localhost, "/var/lib/k/seccomp/a.json")
    assert sent(SecurityConfig(seccomp="RuntimeDefault")) == (pb.SecurityProfile.RuntimeDefault, "")
    assert sent(SecurityConfig(seccomp="Unconfined")) == (pb.SecurityProfile.Unconfined, "")


def test_sandbox_status_keeps_the_cgroup_parent_out_of_the_annotations() -> None:
    raw = pb.PodSandboxStatus(
        id="s1",
        metadata=pb.PodSandboxMetadata(name="web", namespace="prod", uid="u-1", attempt=1),
        state=pb.SANDBOX_NOTREADY,
        created_at=1_500_000_000_250_000_000,
        network=pb.PodSandboxNetworkStatus(ip="10.1.0.5", additional_ips=[pb.PodIP(ip="fd00::5")]),
        annotations={"pykubelet.io/cgroup-parent": "k/podu-1", "a": "b"},
    )
    st = sandbox_status(raw)
    assert (st.ip, st.additional_ips, st.created_at) == ("10.1.0.5", ("fd00::5",), 1.5e9 + 0.25)
    assert (st.cgroup_parent, dict(st.annotations), st.netns_path) == ("k/podu-1", {"a": "b"}, "")
    assert st.state.value == "SANDBOX_NOTREADY"


def test_image_info_keeps_tags_digests_and_size() -> None:
    """What node status reports as the image's names and size."""
    info = image_info(
        pb.Image(
            id="sha256:abc",
            repo_tags=["docker.io/library/busybox:1.35"],
            repo_digests=["docker.io/library/busybox@sha256:def"],
            size=2_000_000,
        )
    )
    assert info.repo_tags == ("docker.io/library/busybox:1.35",)
    assert info.repo_digests == ("docker.io/library/busybox@sha256:def",)
    assert info.size_bytes == 2_000_000


def test_exit_status_from_the_error_channel() -> None:
    assert parse_exit_status(b'{"metadata":{},"status":"Success"}') == 0
    failure = (
        b'{"metadata":{},"status":"Failure","message":"command terminated with non-zero exit '
        b'code","reason":"NonZeroExitCode","details":{"causes":[{"reason":"ExitCode",'
        b'"message":"42"}]}}'
    )
    assert parse_exit_status(failure) == 42
    with pytest.raises(RuntimeFailure, match="container not running"):
        parse_exit_status(b'{"status":"Failure","message":"container not running"}')
    with pytest.raises(RuntimeFailure, match="plain text"):
        parse_exit_status(b"plain text")


def test_endpoints() -> None:
    assert parse_endpoint("unix:///run/containerd/containerd.sock") == (
        "unix:///run/containerd/containerd.sock"
    )
    assert parse_endpoint("/run/c.sock") == "unix:///run/c.sock"
    for bad in ("tcp://1.2.3.4:5", "unix://relative.sock", "npipe:////./pipe/x"):
        with pytest.raises(InvalidInput, match="containerRuntimeEndpoint"):
            parse_endpoint(bad)


@pytest.mark.parametrize(
    ("code", "details", "kind"),
    [
        (grpc.StatusCode.UNAVAILABLE, "connection refused", RuntimeUnavailable),
        (grpc.StatusCode.DEADLINE_EXCEEDED, "deadline", RuntimeUnavailable),
        # containerd's CRI plugin while it loads its state after a restart: transient
        (grpc.StatusCode.UNKNOWN, "server is not initialized yet", RuntimeUnavailable),
        (grpc.StatusCode.NOT_FOUND, "no such container", ContainerNotFound),
        (grpc.StatusCode.UNKNOWN, "failed to create shim", CreateContainerError),
    ],
)
async def test_grpc_errors_become_runtime_errors(
    code: grpc.StatusCode, details: str, kind: type[RuntimeFailure]
) -> None:
    async def rpc(request: object, **_grpc_options: object) -> object:
        raise grpc.aio.AioRpcError(code, grpc.aio.Metadata(), grpc.aio.Metadata(), details)

    client = CriClient("unix:///nowhere.sock")
    with pytest.raises(kind, match=details) as e:
        await client.call(rpc, None, not_found=ContainerNotFound, failure=CreateContainerError)
    assert type(e.value) is kind
    if code == grpc.StatusCode.NOT_FOUND:  # the idempotent stop/remove calls
        assert await client.call(rpc, None, missing_ok=True) is None
    await client.close()
