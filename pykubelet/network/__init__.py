"""Pod networking: CNI plugins invoked per the specification, behind the ``PodNetwork`` seam."""

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
    CniConfigError,
    CniPluginError,
    NetworkError,
    PodNetworkStatus,
    SandboxNetworkRef,
)

__all__ = [
    "DEFAULT_BRIDGE",
    "DEFAULT_SUBNET",
    "CniConfigError",
    "CniInvocation",
    "CniNetwork",
    "CniPluginError",
    "ConfList",
    "NetworkError",
    "PodNetworkStatus",
    "PortMapper",
    "SandboxNetworkRef",
    "cni_port_mappings",
    "default_conflist",
    "inject_runtime_config",
    "invoke_list",
    "load_conf_dir",
    "loopback_conf",
    "portmap_conflist",
    "result_ips",
]
