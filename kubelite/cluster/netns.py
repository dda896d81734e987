"""Nodes as network namespaces on one machine, as kind makes nodes from containers.

The host holds a bridge (`kubelite0`) with the first address of the node network (198.19.128.1/24);
node N is the network namespace `<bridge>-n<N>` joined to the bridge by a veth pair (host side
named as the namespace, node side `eth0`) with address .N+1 and a default route via the host. The
node's agent runs inside that namespace (`nsenter --net`), so its pods' bridge, its Service proxy
rules and its routes are its own, while mounts, cgroups and the image store stay the host's.

The commands are computed as data (`ip -batch` lines) and run in two batches per node, the cheapest
way measured on this machine (runtime recipes §1). Every step is idempotent, so `start` after a
crash or a half-finished `stop` repairs rather than fails.
"""

from __future__ import annotations

import ipaddress
import subprocess
from dataclasses import dataclass
from pathlib import Path

NETNS_DIR = Path("/run/netns")
NODE_SYSCTLS = ("net.ipv4.ip_forward=1",  # a node routes for its pods and for NodePorts
                "net.ipv4.conf.all.send_redirects=0",  # hairpin via the pods' gateway is not a redirect
                "net.ipv4.conf.default.send_redirects=0")


class NetworkError(Exception):
    pass


@dataclass(frozen=True)
class NodeNetwork:
    bridge: str = "kubelite0"
    cidr: str = "198.19.128.0/24"

    @property
    def prefixlen(self) -> int:
        return ipaddress.ip_network(self.cidr).prefixlen

    @property
    def host_ip(self) -> str:
        return str(ipaddress.ip_network(self.cidr).network_address + 1)

    def node_ip(self, index: int) -> str:
        network = ipaddress.IPv4Network(self.cidr)
        address = network.network_address + 1 + index
        if index < 1 or address >= network.broadcast_address:
            raise NetworkError(f"node index {index} does not fit in the node network {self.cidr}")
        return str(address)

    def netns(self, index: int) -> str:
        return f"{self.bridge}-n{index}"


def bridge_commands(net: NodeNetwork) -> list[str]:
    return [f"link add {net.bridge} type bridge", f"addr add {net.host_ip}/{net.prefixlen} dev {net.bridge}",
            f"link set {net.bridge} up"]


def node_host_commands(net: NodeNetwork, index: int) -> list[str]:
    name = net.netns(index)
    return [f"netns add {name}", f"link add {name} type veth peer name eth0 netns {name}",
            f"link set {name} master {net.bridge} up"]


def node_inner_commands(net: NodeNetwork, index: int) -> list[str]:
    return [f"addr add {net.node_ip(index)}/{net.prefixlen} dev eth0", "link set lo up", "link set eth0 up",
            f"route add default via {net.host_ip}"]


# ----- thin I/O ----------------------------------------------------------------------------------

def _ip_batch(commands: list[str], *, netns: str | None = None) -> None:
    argv = ["ip", *(["-n", netns] if netns else []), "-batch", "-"]
    result = subprocess.run(argv, input="\n".join(commands) + "\n", capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise NetworkError(f"`{' '.join(argv)}` failed: {result.stderr.strip() or result.stdout.strip()}")


def link_exists(name: str, *, netns: str | None = None) -> bool:
    argv = ["ip", *(["-n", netns] if netns else []), "link", "show", "dev", name]
    return subprocess.run(argv, capture_output=True, check=False).returncode == 0


def netns_exists(name: str) -> bool:
    return (NETNS_DIR / name).exists()


def ensure_bridge(net: NodeNetwork) -> bool:
    """Create the host bridge with its address; False when it was there already."""
    if link_exists(net.bridge):
        return False
    _ip_batch(bridge_commands(net))
    return True


def ensure_node(net: NodeNetwork, index: int) -> bool:
    """Create node `index`'s namespace, link and addresses; False when it was complete already."""
    name = net.netns(index)
    if netns_exists(name) and link_exists(name) and link_exists("eth0", netns=name):
        return False
    remove_node(net, index)  # a half-made node from an interrupted start
    _ip_batch(node_host_commands(net, index))
    _ip_batch(node_inner_commands(net, index), netns=name)
    sysctl = subprocess.run(["ip", "netns", "exec", name, "sysctl", "-qw", *NODE_SYSCTLS],
                            capture_output=True, text=True, check=False)
    if sysctl.returncode != 0:
        raise NetworkError(f"setting sysctls in {name} failed: {sysctl.stderr.strip()}")
    return True


def remove_node(net: NodeNetwork, index: int) -> None:
    name = net.netns(index)
    if netns_exists(name):
        subprocess.run(["ip", "netns", "del", name], capture_output=True, check=False)
    if link_exists(name):  # the host end normally dies with its peer; make sure
        subprocess.run(["ip", "link", "del", name], capture_output=True, check=False)


def remove_bridge(net: NodeNetwork) -> None:
    if link_exists(net.bridge):
        subprocess.run(["ip", "link", "del", net.bridge], capture_output=True, check=False)


def guard_routes(net: NodeNetwork, *, unreachable: list[str], on_bridge: list[str], present: bool = True) -> None:
    """Host routes for the cluster's own ranges, so nothing in them ever leaves by the default
    route: `unreachable` ones (pod addresses: the more specific routes to nodes' pod CIDRs win)
    and ones `on_bridge` (ClusterIPs and LoadBalancer addresses: the host's Service proxy
    rewrites them after routing, which needs a route to start from; what no rule matches dies
    on the bridge unanswered)."""
    verb = "replace" if present else "del"
    for cidr in unreachable:
        subprocess.run(["ip", "route", verb, "unreachable", cidr], capture_output=True, check=False)
    for cidr in on_bridge:
        subprocess.run(["ip", "route", verb, cidr, "dev", net.bridge, "src", net.host_ip],
                       capture_output=True, check=False)


def delete_nft_table(name: str) -> None:
    """Delete nftables table `ip <name>` if it is there (and nft too)."""
    import shutil

    if shutil.which("nft") and subprocess.run(["nft", "list", "table", "ip", name], capture_output=True,
                                              check=False).returncode == 0:
        subprocess.run(["nft", "delete", "table", "ip", name], capture_output=True, check=False)


def run_in(netns: str) -> list[str]:
    """The command prefix that runs a program in node `netns` (network only: mounts stay shared)."""
    return ["nsenter", f"--net={NETNS_DIR / netns}", "--"]
