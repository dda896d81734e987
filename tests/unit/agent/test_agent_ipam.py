"""Pod addresses from a node's podCIDR, host-local style."""

from __future__ import annotations

import pytest

from kubelite.agent.ipam import HostLocalIpam, RangeFull


def test_skips_network_and_gateway_and_rotates() -> None:
    ipam = HostLocalIpam("10.0.0.0/29")  # .2 .. .6 usable
    assert [ipam.allocate(f"p{i}") for i in range(3)] == ["10.0.0.2", "10.0.0.3", "10.0.0.4"]
    assert ipam.allocate("p0") == "10.0.0.2"  # the same owner keeps its address
    ipam.release("p1")
    assert ipam.allocate("p3") == "10.0.0.5"  # round robin: .3 is not reused at once
    assert ipam.allocate("p4") == "10.0.0.6"
    assert ipam.allocate("p5") == "10.0.0.3"  # wrapped round
    with pytest.raises(RangeFull):
        ipam.allocate("p6")
    assert ipam.in_use() == 5


def test_reserve_for_recovery() -> None:
    ipam = HostLocalIpam("10.0.0.0/24")
    assert ipam.reserve("10.0.0.9", "a")
    assert not ipam.reserve("10.0.0.9", "b")  # taken
    assert not ipam.reserve("10.0.1.9", "b")  # outside
    assert not ipam.reserve("10.0.0.1", "b")  # the gateway
    assert ipam.allocate("a") == "10.0.0.9"
    with pytest.raises(ValueError):
        HostLocalIpam("10.0.0.0/31")
