"""Pod networking behind the ``PodNetwork`` seam: CNI plugins invoked per the specification
when the conf dir holds a network, else the built-in bridge network over rtnetlink."""

from pykubelet.network.bridge import BridgeNetwork, host_veth_name
from pykubelet.network.cni import (
    CniInvocation,
    ConfList,
    cni_port_mappings,
    inject_runtime_config,
    invoke_list,
    load_conf_dir,
    result_ips,
)
from pykubelet.network.manager import (
    DEFAULT_BRIDGE,
    DEFAULT_SUBNET,
    CniNetwork,
    default_conflist,
    loopback_conf,
)
from pykubelet.network.portmap import PortMapper, portmap_conflist
from pykubelet.network.types import (
    AddressPoolExhausted,
    AgentNetwork,
    CniConfigError,
    CniPluginError,
    NetlinkError,
    NetworkError,
    PodNetworkStatus,
    SandboxNetworkRef,
)

__all__ = [
    "DEFAULT_BRIDGE",
    "DEFAULT_SUBNET",
    "AddressPoolExhausted",
    "AgentNetwork",
    "BridgeNetwork",
    "CniConfigError",
    "CniInvocation",
    "CniNetwork",
    "CniPluginError",
    "ConfList",
    "NetlinkError",
    "NetworkError",
    "PodNetworkStatus",
    "PortMapper",
    "SandboxNetworkRef",
    "cni_port_mappings",
    "default_conflist",
    "inject_runtime_config",
    "host_veth_name",
    "invoke_list",
    "load_conf_dir",
    "loopback_conf",
    "portmap_conflist",
    "result_ips",
]
