"""Cluster configuration: one frozen dataclass, defaults from the address plan (198.18.0.0/15)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

DEFAULT_DATA_DIR = Path("/var/lib/kubelite")


@dataclass(frozen=True)
class ServerConfig:
    data_dir: Path = DEFAULT_DATA_DIR
    datastore: str = ""  # URL; "" means sqlite:///<data_dir>/state.db
    bind_address: str = "127.0.0.1"
    port: int = 6443
    advertise_address: str = "198.19.128.1"
    extra_sans: tuple[str, ...] = ()
    service_cidr: str = "198.19.0.0/17"
    cluster_cidr: str = "198.18.0.0/16"
    node_cidr_mask_size: int = 24  # each node's podCIDR prefix length, carved from cluster_cidr
    node_port_range: tuple[int, int] = (30000, 32767)
    lb_pool: str = "198.19.200.0/24"
    tls: bool = True
    compact_interval: float = 300.0
    compact_retain: int = 10_000  # revisions kept behind the newest for watch resumption
    controllers: str = "*"  # kube-controller-manager style: "*", names, "-name"; "" runs none
    scheduler: bool = True
    node_monitor_grace_period: float = 40.0
    leader_elect: bool = True
    identity: str = ""  # this server's name in leader elections; hostname + pid when empty
    leader_lease_duration: float = 15.0  # seconds (kube-controller-manager's --leader-elect-* defaults)
    leader_renew_deadline: float = 10.0
    leader_retry_period: float = 2.0
    dns: bool = True  # serve the cluster DNS (kubelite/dns) and create the kube-dns Service
    dns_listen: str = "127.0.0.1:10053"  # comma-separated host:port list (UDP and TCP); port 0 picks one
    dns_upstreams: tuple[str, ...] = ()  # host[:port] resolvers for other names; () reads /etc/resolv.conf
    dns_forward: bool = True  # False: other names get no answer from elsewhere (offline clusters)
    cluster_domain: str = "cluster.local"
    registry: bool = True  # serve the image registry (kubelite/images/registry) from <data_dir>/registry
    registry_listen: str = "127.0.0.1:5000"  # comma-separated host:port list; port 0 picks one
    host_network: bool = False  # the nodes are local netns: proxy + pod routes on this host too
    host_proxy_table: str = "kubelite-host"  # nftables table of the host's Service proxy
    host_routes_proto: int = 211  # route protocol marking the host's pod routes (one per cluster on a host)

    @property
    def datastore_url(self) -> str:
        return self.datastore or f"sqlite://{self.data_dir / 'state.db'}"

    @property
    def kubernetes_service_ip(self) -> str:
        import ipaddress

        return str(ipaddress.ip_network(self.service_cidr).network_address + 1)

    @property
    def dns_service_ip(self) -> str:
        import ipaddress

        return str(ipaddress.ip_network(self.service_cidr).network_address + 10)
