"""The node network plan: addresses, names and the `ip -batch` lines, as data."""

from __future__ import annotations

import pytest

from kubelite.cluster.local import ClusterSpec, LocalCluster
from kubelite.cluster.netns import (
    NetworkError,
    NodeNetwork,
    bridge_commands,
    node_host_commands,
    node_inner_commands,
)


def test_the_host_is_the_first_address_and_node_n_the_next_ones() -> None:
    net = NodeNetwork(bridge="kl0", cidr="198.19.128.0/24")
    assert net.host_ip == "198.19.128.1" and net.node_ip(1) == "198.19.128.2" and net.node_ip(253) == "198.19.128.254"
    with pytest.raises(NetworkError):
        net.node_ip(254)  # the broadcast address
    assert net.netns(2) == "kl0-n2"


def test_batches_make_the_bridge_then_each_node() -> None:
    net = NodeNetwork(bridge="kl0", cidr="198.19.128.0/24")
    assert bridge_commands(net) == ["link add kl0 type bridge", "addr add 198.19.128.1/24 dev kl0", "link set kl0 up"]
    assert node_host_commands(net, 1) == ["netns add kl0-n1", "link add kl0-n1 type veth peer name eth0 netns kl0-n1",
                                          "link set kl0-n1 master kl0 up"]
    assert node_inner_commands(net, 1) == ["addr add 198.19.128.2/24 dev eth0", "link set lo up",
                                           "link set eth0 up", "route add default via 198.19.128.1"]


def test_agents_run_in_their_node_and_pull_pushed_names_from_the_host_registry(tmp_path: object) -> None:
    spec = ClusterSpec(registry_port=5001).with_nodes(2)
    cluster = LocalCluster(tmp_path, spec)  # type: ignore[arg-type]
    argv = cluster.node_args("kubelite-m02")
    assert argv[argv.index("--node-ip") + 1] == "198.19.128.3"
    assert argv[argv.index("--server") + 1] == "https://198.19.128.1:6443"
    assert "localhost:5001=http://198.19.128.1:5001" in argv and "127.0.0.1:5001=http://198.19.128.1:5001" in argv
    server = cluster.server_args()
    assert server[server.index("--dns-listen") + 1] == "127.0.0.1:10053,198.19.128.1:10053"
    assert "--host-network" in server
    assert ClusterSpec(name="a").routes_proto != ClusterSpec(name="kubelite").routes_proto
