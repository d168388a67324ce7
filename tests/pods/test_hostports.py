"""Container ports: validation naming the field, the sandbox's port mappings as upstream builds
them, the CNI capability arguments, and admission refusing host-port clashes (``NodePorts``)."""

from __future__ import annotations

from typing import Any

import pytest

from pykubelet.api import Pod
from pykubelet.core.errors import InvalidInput
from pykubelet.network import SandboxNetworkRef, cni_port_mappings, inject_runtime_config
from pykubelet.pods import RuntimeConfigBuilder
from pykubelet.pods.ports import host_port_conflict, host_ports, port_mappings
from pykubelet.runtime.types import PortMapping
from tests.pods.harness import ctr, harness, manifest, static


def _pod(*ports: dict[str, Any], host_network: bool = False, name: str = "p") -> Pod:
    spec: dict[str, Any] = {"hostNetwork": True} if host_network else {}
    return static(manifest(name, ctr("c", ports=list(ports)), **spec))


@pytest.mark.parametrize(
    ("ports", "field", "text"),
    [
        ([{"containerPort": 80, "hostPort": 70000}], "ports[0].hostPort", "between 1 and 65535"),
        ([{"containerPort": 80, "hostPort": -1}], "ports[0].hostPort", "between 1 and 65535"),
        ([{"containerPort": 80}, {"containerPort": 0}], "ports[1].containerPort", "Required"),
        ([{"hostPort": 80}], "ports[0].containerPort", "Required value"),
        ([{"containerPort": 65536}], "ports[0].containerPort", "between 1 and 65535"),
        ([{"containerPort": "80"}], "ports[0].containerPort", "expected integer"),
        ([{"containerPort": 80, "protocol": "tcp"}], "ports[0].protocol", "Unsupported value"),
        ([{"containerPort": 80, "hostIP": "localhost"}], "ports[0].hostIP", "valid IP"),
        ([{"containerPort": 80, "name": "Http"}], "ports[0].name", "alpha-numeric"),
        ([{"containerPort": 80, "name": "a" * 16}], "ports[0].name", "15 characters"),
        (
            [{"containerPort": 80, "name": "web"}, {"containerPort": 81, "name": "web"}],
            "ports[1].name",
            "Duplicate value",
        ),
        (
            [{"containerPort": 80, "hostPort": 8080}, {"containerPort": 81, "hostPort": 8080}],
            "ports[1].hostPort",
            "Duplicate value: 'TCP//8080'",
        ),
        (["80"], "ports[0]", "expected object"),
    ],
)
def test_bad_ports_are_refused_naming_the_field(ports: list[Any], field: str, text: str) -> None:
    doc = manifest("bad", ctr("a"), ctr("b", ports=ports))
    with pytest.raises(InvalidInput) as info:
        static(doc)
    assert info.value.field == f"spec.containers[1].{field}"
    assert text in str(info.value)


def test_host_port_clash_between_containers_of_one_pod_is_refused() -> None:
    doc = manifest(
        "two",
        ctr("a", ports=[{"containerPort": 80, "hostPort": 9000}]),
        ctr("b", ports=[{"containerPort": 81, "hostPort": 9000}]),
    )
    with pytest.raises(InvalidInput) as info:
        static(doc)
    assert info.value.field == "spec.containers[1].ports[0].hostPort"
    # other protocols or addresses do not clash
    doc["spec"]["containers"][1]["ports"][0]["protocol"] = "UDP"
    static(doc)


def test_host_network_defaults_host_port_and_refuses_another() -> None:
    pod = _pod({"containerPort": 8080}, host_network=True)
    assert port_mappings(pod) == (PortMapping(container_port=8080, host_port=8080),)
    assert host_ports(pod) == {("0.0.0.0", "TCP", 8080)}
    with pytest.raises(InvalidInput, match="must match `hostPort` when `hostNetwork` is true"):
        _pod({"containerPort": 8080, "hostPort": 9090}, host_network=True)


def test_sandbox_config_carries_every_container_port_as_upstream() -> None:
    doc = manifest(
        "web",
        ctr(
            "a",
            ports=[
                {"name": "http", "containerPort": 80, "hostPort": 8080, "hostIP": "127.0.0.1"},
                {"containerPort": 53, "protocol": "UDP"},
                {"containerPort": 53, "protocol": "UDP"},  # repeats: skipped as upstream does
            ],
        ),
        ctr("b", ports=[{"containerPort": 9090, "protocol": "SCTP", "hostPort": 19090}]),
        initContainers=[ctr("init", ports=[{"containerPort": 7000, "hostPort": 7000}])],
    )
    pod = static(doc)
    config = RuntimeConfigBuilder(root_dir="/tmp/x").sandbox(pod, 0)
    assert config.port_mappings == (
        PortMapping(container_port=80, host_port=8080, protocol="TCP", host_ip="127.0.0.1"),
        PortMapping(container_port=53, protocol="UDP"),
        PortMapping(container_port=9090, host_port=19090, protocol="SCTP"),
    )
    # CNI sees host ports only, protocols in lower case, hostIP only when set
    assert cni_port_mappings(config.port_mappings) == [
        {"hostPort": 8080, "containerPort": 80, "protocol": "tcp", "hostIP": "127.0.0.1"},
        {"hostPort": 19090, "containerPort": 9090, "protocol": "sctp"},
    ]


def test_capability_arguments_go_only_to_plugins_that_declare_them() -> None:
    args = {"portMappings": [{"hostPort": 1, "containerPort": 2, "protocol": "tcp"}]}
    portmap = {"type": "portmap", "capabilities": {"portMappings": True}, "snat": True}
    assert inject_runtime_config(portmap, args)["runtimeConfig"] == args
    assert "runtimeConfig" not in inject_runtime_config({"type": "bridge"}, args)
    off = {"type": "portmap", "capabilities": {"portMappings": False}}
    assert "runtimeConfig" not in inject_runtime_config(off, args)
    other = {"type": "x", "capabilities": {"bandwidth": True}}
    assert "runtimeConfig" not in inject_runtime_config(other, args)


@pytest.mark.parametrize(
    ("first", "second", "clash"),
    [
        ({"hostPort": 8080}, {"hostPort": 8080}, True),
        ({"hostPort": 8080}, {"hostPort": 8080, "hostIP": "127.0.0.1"}, True),  # 0.0.0.0 is all
        ({"hostPort": 8080, "hostIP": "127.0.0.1"}, {"hostPort": 8080}, True),
        (
            {"hostPort": 8080, "hostIP": "127.0.0.1"},
            {"hostPort": 8080, "hostIP": "127.0.0.2"},
            False,
        ),
        ({"hostPort": 8080}, {"hostPort": 8080, "protocol": "UDP"}, False),
        ({"hostPort": 8080}, {"hostPort": 8081}, False),
        ({}, {}, False),  # no host port: nothing claimed
    ],
)
def test_host_port_conflict_rules(
    first: dict[str, Any], second: dict[str, Any], clash: bool
) -> None:
    a = _pod({"containerPort": 80, **first}, name="a")
    b = _pod({"containerPort": 80, **second}, name="b")
    assert (host_port_conflict(b, [a]) is not None) is clash


async def test_clashing_pod_is_rejected_with_node_ports_and_the_first_keeps_running() -> None:
    first = _pod({"containerPort": 80, "hostPort": 8080}, name="first")
    clash = _pod({"containerPort": 81, "hostPort": 8080, "hostIP": "127.0.0.1"}, name="clash")
    other = _pod({"containerPort": 80, "hostPort": 8081}, name="other")
    async with harness() as h:
        h.set_pods(first)
        await h.until(lambda: h.pod_status(first).phase == "Running")
        h.set_pods(first, clash, other)
        await h.until(lambda: h.pod_status(other).phase == "Running")
        rejected = h.pod(clash).status
        assert rejected is not None and rejected.phase == "Failed"
        assert rejected.reason == "NodePorts"
        assert rejected.message == "Pod Predicate NodePorts failed"
        assert h.pod_status(first).phase == "Running"
        assert len(h.runtime.running()) == 2
        # once the first pod is gone, a new pod may take the port
        again = _pod({"containerPort": 82, "hostPort": 8080}, name="again")
        h.set_pods(other, again)
        await h.until(lambda: h.pod_status(again).phase == "Running")


def test_the_network_reference_carries_the_sandbox_port_mappings() -> None:
    pod = _pod({"containerPort": 80, "hostPort": 8080, "hostIP": "127.0.0.1"})
    config = RuntimeConfigBuilder(root_dir="/tmp/x").sandbox(pod, 0)
    ref = SandboxNetworkRef.of("sb1", "/proc/1/ns/net", config)
    assert ref.port_mappings == config.port_mappings != ()
