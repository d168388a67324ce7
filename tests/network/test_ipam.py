"""The built-in network's address pool: plain files, no root needed."""

from __future__ import annotations

import ipaddress
import threading
from pathlib import Path

import pytest

from pykubelet.network import AddressPoolExhausted
from pykubelet.network.ipam import AddressPool

NET = ipaddress.IPv4Network("10.99.7.0/24")


def test_lowest_free_address_skipping_network_gateway_and_broadcast(tmp_path: Path) -> None:
    pool = AddressPool(tmp_path, NET)
    assert [pool.allocate(f"s{i}") for i in range(3)] == ["10.99.7.2", "10.99.7.3", "10.99.7.4"]
    assert pool.allocate("s1") == "10.99.7.3"  # a sandbox keeps what it holds
    assert (tmp_path / "10.99.7.3").read_text() == "s1\n"
    assert pool.release("s1") == "10.99.7.3"
    assert not (tmp_path / "10.99.7.3").exists()
    assert pool.release("s1") is None  # idempotent
    assert pool.allocate("s9") == "10.99.7.3"
    # 253 addresses in a /24 once .0, .1 (gateway) and .255 are left out
    for i in range(10, 260):
        pool.allocate(f"x{i}")
    with pytest.raises(AddressPoolExhausted, match=r"no free address in 10\.99\.7\.0/24"):
        pool.allocate("one-more")
    assert not (tmp_path / "10.99.7.255").exists()


def test_a_restarted_pool_keeps_what_is_held(tmp_path: Path) -> None:
    first = AddressPool(tmp_path, NET)
    a, b = first.allocate("a"), first.allocate("b")
    first.release("a")
    (tmp_path / "10.99.7.9").write_text("")  # a crash between create and write
    (tmp_path / "notes.txt").write_text("not a record")
    second = AddressPool(tmp_path, NET)
    assert second.address_of("b") == b
    assert second.allocate("c") == a  # released before the restart: free again
    assert second.allocate("d") not in (b, "10.99.7.9")
    assert second.holders() == {a: "c", b: "b", "10.99.7.9": "", "10.99.7.4": "d"}
    second.release_address("10.99.7.9")
    assert "10.99.7.9" not in second.holders()


def test_two_pools_on_one_store_never_hand_out_the_same_address(tmp_path: Path) -> None:
    one, two = AddressPool(tmp_path, NET), AddressPool(tmp_path, NET)
    one.holders(), two.holders()  # both loaded the empty store
    assert one.allocate("a") != two.allocate("b")


def test_threads_get_distinct_addresses(tmp_path: Path) -> None:
    pool = AddressPool(tmp_path, NET)
    got: list[str] = []
    threads = [
        threading.Thread(target=lambda i=i: got.append(pool.allocate(f"t{i}"))) for i in range(50)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(got)) == 50


def test_subnets_too_small_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="too small"):
        AddressPool(tmp_path, ipaddress.IPv4Network("10.99.7.0/31"))
    tiny = AddressPool(tmp_path, ipaddress.IPv4Network("10.99.7.0/30"))
    assert tiny.allocate("only") == "10.99.7.2"
    with pytest.raises(AddressPoolExhausted):
        tiny.allocate("second")


def test_host_veth_names_fit_and_follow_the_sandbox_id() -> None:
    from pykubelet.network import host_veth_name

    sid = "0123456789abcdef" * 4
    assert host_veth_name(sid) == "pkv0123456789ab"
    other = host_veth_name("sandbox-a")
    assert len(other) == 15 and other.startswith("pkv") and other == host_veth_name("sandbox-a")
    assert other != host_veth_name("sandbox-b")
