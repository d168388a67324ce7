"""Shared pytest fixtures. Ports are always ephemeral and addresses always loopback."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from devtools.firewall_cleanup import firewall_left_as_found

pytest_plugins = ["tests.images.fixtures"]  # the registries (docker-registry) for image tests


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def unused_port() -> int:
    return free_port()


@pytest.fixture(scope="session", autouse=True)
def _firewall_left_as_found() -> Iterator[None]:
    """Host-port tests make agents add the localnet guard rule and portmap its shared chains,
    which outlive the pods on purpose; the session removes what the host did not have."""
    with firewall_left_as_found():
        yield
