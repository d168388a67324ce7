"""--node-ip: checked to be this host's address; otherwise detected without an `ip` exec."""

from __future__ import annotations

import subprocess

import pytest

from pykubelet.config import ConfigError, load_config
from pykubelet.core.errors import InvalidInput
from pykubelet.host.nodeip import choose_node_ip
from tests.prereq import require_binary


def test_a_given_node_ip_must_belong_to_this_host() -> None:
    assert choose_node_ip("127.0.0.1") == "127.0.0.1"
    with pytest.raises(InvalidInput, match=r"--node-ip: 203.0.113.77 is not an address of this"):
        choose_node_ip("203.0.113.77")  # TEST-NET-3: on no interface here
    with pytest.raises(InvalidInput, match="cannot be a node address"):
        choose_node_ip("224.0.0.1")
    with pytest.raises(InvalidInput, match="not an IP address"):
        choose_node_ip("node-1")


def test_detection_matches_the_default_route_interface() -> None:
    ip = require_binary("ip")  # the test's own witness; the agent never runs `ip`
    route = subprocess.run([ip, "-4", "route", "show", "default"], capture_output=True, text=True)
    words = route.stdout.split()
    if "dev" not in words:
        pytest.skip("this host has no IPv4 default route")
    dev = words[words.index("dev") + 1]
    addrs = subprocess.run(
        [ip, "-4", "-o", "addr", "show", "dev", dev, "scope", "global"],
        capture_output=True,
        text=True,
    ).stdout.split()
    expected = {addrs[i + 1].split("/")[0] for i, w in enumerate(addrs) if w == "inet"}
    assert choose_node_ip("") in expected
    assert choose_node_ip("0.0.0.0") in expected


def test_the_flag_is_parsed_and_checked() -> None:
    assert load_config(["--node-ip", "127.0.0.1", "--node-name", "n"]).node_ip == "127.0.0.1"
    assert load_config(["--node-name", "n"]).node_ip == ""
    with pytest.raises(ConfigError) as e:
        load_config(["--node-ip", "a.b", "--node-name", "n"])
    assert e.value.problems == ("--node-ip: not an IP address: 'a.b': 'a.b'",)
