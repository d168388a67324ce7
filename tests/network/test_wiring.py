"""Which pod network the agent builds: CNI when the conf dir holds a config, else built in."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pykubelet.agent import build_network
from pykubelet.config import KubeletConfiguration, load_config
from pykubelet.network import (
    DEFAULT_BRIDGE,
    DEFAULT_SUBNET,
    BridgeNetwork,
    CniConfigError,
    CniNetwork,
    default_conflist,
)
from tests.prereq import require_root


def _config(tmp: Path, conf_dir: Path) -> KubeletConfiguration:
    return load_config(["--root-dir", str(tmp / "root"), "--cni-conf-dir", str(conf_dir)])


@pytest.mark.root
def test_cni_when_configured_else_the_built_in_network(tmp_path: Path) -> None:
    require_root()
    conf_dir = tmp_path / "net.d"
    built_in = build_network(_config(tmp_path, conf_dir))
    assert isinstance(built_in, BridgeNetwork)
    assert (built_in.bridge, str(built_in.subnet)) == (DEFAULT_BRIDGE, DEFAULT_SUBNET)
    conf_dir.mkdir()
    (conf_dir / "README").write_text("not a network")
    assert isinstance(build_network(_config(tmp_path, conf_dir)), BridgeNetwork)
    (conf_dir / "10-net.conflist").write_text(json.dumps(default_conflist().to_json()))
    assert isinstance(build_network(_config(tmp_path, conf_dir)), CniNetwork)
    (conf_dir / "05-broken.conf").write_text("{not json")
    with pytest.raises(CniConfigError, match=r"05-broken\.conf"):
        build_network(_config(tmp_path, conf_dir))


@pytest.mark.root
def test_pod_cidr_is_the_built_in_networks_subnet(tmp_path: Path) -> None:
    require_root()
    root, none = str(tmp_path / "root"), str(tmp_path / "none")
    argv = ["--root-dir", root, "--cni-conf-dir", none, "--pod-cidr", "10.99.64.0/20"]
    config = load_config(argv)
    net = build_network(config)
    assert isinstance(net, BridgeNetwork)
    assert (str(net.subnet), net.gateway) == ("10.99.64.0/20", "10.99.64.1")
