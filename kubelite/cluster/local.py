"""A cluster on one machine: what `kubelite start` made, kept in `<data-dir>/cluster.json`, and
the daemons that run it.

`ClusterSpec` is chosen at the first start (flags) and reused by every later `start`, `stop`,
`node add|delete` and `delete`, so the addresses, names and ports of a cluster never drift between
commands. Daemons: `server` (API, controllers, scheduler, DNS, registry, and the host's Service
proxy and pod routes), and one `node-<name>` agent per node; with the runc runtime each agent runs
inside its node's network namespace (`kubelite.cluster.netns`), with the fake runtime all nodes
are hollow kubelets in one `nodes` daemon.

Node names follow minikube: the first node is named after the cluster (`kubelite`), the others
`kubelite-m02`, `kubelite-m03`, ...; node N has index N (address .N+1 on the node network).
"""

from __future__ import annotations

import ipaddress
import json
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from kubelite.cluster.daemon import Daemon
from kubelite.cluster.netns import NodeNetwork, run_in

SPEC_FILE = "cluster.json"


@dataclass(frozen=True)
class ClusterSpec:
    name: str = "kubelite"
    runtime: str = "runc"
    port: int = 6443
    bridge: str = "kubelite0"
    node_network: str = "198.19.128.0/24"
    cluster_cidr: str = "198.18.0.0/16"
    service_cidr: str = "198.19.0.0/17"
    lb_pool: str = "198.19.200.0/24"
    dns_port: int = 10053
    registry_port: int = 5000
    node_monitor_grace_period: float = 40.0
    pod_network: str = "host-gw"  # routes between nodes' pods: host-gw, or vxlan (an overlay)
    offline: bool = False  # nodes pull only from the cluster registry; DNS forwards nothing
    nodes: dict[str, int] = field(default_factory=dict)  # name -> index

    @property
    def network(self) -> NodeNetwork:
        return NodeNetwork(bridge=self.bridge, cidr=self.node_network)

    @property
    def dns_service_ip(self) -> str:
        return str(ipaddress.ip_network(self.service_cidr).network_address + 10)

    @property
    def routes_proto(self) -> int:
        """The route protocol number of this cluster's host routes, told apart from other clusters'
        on the same host by name (200-249: clear of the kernel's and routing daemons' numbers)."""
        import zlib

        return 200 + zlib.crc32(self.name.encode()) % 50

    def node_name(self, index: int) -> str:
        return self.name if index == 1 else f"{self.name}-m{index:02d}"

    def with_nodes(self, count: int) -> ClusterSpec:
        """Nodes 1..count, keeping existing ones' indexes (removal takes the highest first)."""
        kept = dict(sorted(self.nodes.items(), key=lambda kv: kv[1])[:count])
        index = 1
        while len(kept) < count:
            if index not in kept.values():
                kept[self.node_name(index)] = index
            index += 1
        return replace(self, nodes=kept)

    def with_node_added(self) -> tuple[ClusterSpec, str]:
        index = next(i for i in range(1, len(self.nodes) + 2) if i not in self.nodes.values())
        name = self.node_name(index)
        return replace(self, nodes={**self.nodes, name: index}), name

    def without_node(self, name: str) -> ClusterSpec:
        return replace(self, nodes={n: i for n, i in self.nodes.items() if n != name})


def load_spec(data_dir: Path) -> ClusterSpec | None:
    try:
        raw = json.loads((data_dir / SPEC_FILE).read_text())
    except (OSError, ValueError):
        return None
    known = set(ClusterSpec.__dataclass_fields__)
    return ClusterSpec(**{k: v for k, v in raw.items() if k in known})


def save_spec(data_dir: Path, spec: ClusterSpec) -> None:
    from kubelite.lib.files import atomic_write

    data_dir.mkdir(parents=True, exist_ok=True)
    atomic_write(data_dir / SPEC_FILE, json.dumps(asdict(spec), indent=2).encode() + b"\n", 0o644)


@dataclass(frozen=True)
class LocalCluster:
    data_dir: Path
    spec: ClusterSpec

    @property
    def server(self) -> Daemon:
        return Daemon("server", self.data_dir)

    @property
    def hollow_nodes(self) -> Daemon:
        return Daemon("nodes", self.data_dir)

    @property
    def kubeconfig(self) -> Path:
        return self.data_dir / "admin.kubeconfig"

    @property
    def images_dir(self) -> Path:
        from kubelite.images.store import default_root

        return default_root(self.data_dir)

    def node_daemon(self, name: str) -> Daemon:
        return Daemon(f"node-{name}", self.data_dir)

    def node_dir(self, name: str) -> Path:
        return self.data_dir / "nodes" / name

    def daemons(self) -> list[Daemon]:
        """Every daemon this cluster may have, nodes first (they stop before the API they report to)."""
        nodes = [self.node_daemon(name) for name in self.spec.nodes]
        return [*nodes, self.hollow_nodes, Daemon("agent", self.data_dir), self.server]

    def server_args(self) -> list[str]:
        s, host = self.spec, self.spec.network.host_ip
        args = ["server", "--data-dir", str(self.data_dir), "--port", str(s.port),
                "--service-cidr", s.service_cidr, "--cluster-cidr", s.cluster_cidr, "--lb-pool", s.lb_pool,
                "--node-monitor-grace-period", str(s.node_monitor_grace_period)]
        if s.offline:
            args.append("--no-dns-forward")
        if s.runtime != "runc":
            return [*args, "--dns-listen", f"127.0.0.1:{s.dns_port}", "--registry-listen", f"127.0.0.1:{s.registry_port}"]
        return [*args, "--advertise-address", host, "--dns-listen", f"127.0.0.1:{s.dns_port},{host}:{s.dns_port}",
                "--registry-listen", f"127.0.0.1:{s.registry_port},{host}:{s.registry_port}",
                "--host-network", "--host-proxy-table", f"{s.name}-host", "--host-routes-proto", str(s.routes_proto)]

    def node_args(self, name: str) -> list[str]:
        s, index = self.spec, self.spec.nodes[name]
        net = s.network
        return ["agent", "--name", name, "--runtime", "runc", "--data-dir", str(self.node_dir(name)),
                "--server", f"https://{net.host_ip}:{s.port}", "--pki-dir", str(self.data_dir / "pki"),
                "--node-ip", net.node_ip(index), "--images-dir", str(self.images_dir),
                "--netns-prefix", f"{s.name}{index}", "--cgroup-parent", f"{s.name}/{name}",
                "--cni-bridge", "cni0", "--cluster-dns", s.dns_service_ip, "--cluster-cidr", s.cluster_cidr,
                "--proxy-table", s.name, "--pod-routes", s.pod_network,
                # renewed four times per grace period at least, as upstream's 10 s for 40 s
                "--node-lease-renew-interval", str(min(10.0, s.node_monitor_grace_period / 4)),
                *[x for name in self.registry_names for x in ("--registry-mirror", f"{name}={self.registry_url}")],
                *(["--pull-only-from", self.registry_url.removeprefix("http://")] if s.offline else [])]

    @property
    def registry_names(self) -> list[str]:
        """What users push to on this host (`localhost:5000/app`): every node pulls those names
        from the cluster registry on the host, as k3s's registry mirrors make it."""
        return [f"localhost:{self.spec.registry_port}", f"127.0.0.1:{self.spec.registry_port}"]

    @property
    def registry_url(self) -> str:
        return f"http://{self.spec.network.host_ip}:{self.spec.registry_port}"

    def start_node(self, name: str) -> int:
        from kubelite.cluster.netns import ensure_node

        index = self.spec.nodes[name]
        ensure_node(self.spec.network, index)
        return self.node_daemon(name).start(self.node_args(name), wrapper=run_in(self.spec.network.netns(index)))

    def host_network_up(self) -> None:
        """The host's side of the node network: the bridge, the guard routes, the egress table
        (masquerade out, or, offline, nothing out: kubelite.cluster.egress)."""
        from kubelite.cluster import egress
        from kubelite.cluster.netns import ensure_bridge, guard_routes

        s = self.spec
        ensure_bridge(s.network)
        guard_routes(s.network, unreachable=[s.cluster_cidr], on_bridge=[s.service_cidr, s.lb_pool])
        ranges = [s.node_network, s.cluster_cidr, s.service_cidr, s.lb_pool]
        egress.apply(egress.ruleset(s.name, sources=[s.node_network, s.cluster_cidr], cluster_ranges=ranges,
                                    offline=s.offline))
        if not s.offline:  # masquerading forwards; Docker turns it on for the same reason
            with open("/proc/sys/net/ipv4/ip_forward", "w") as f:
                f.write("1\n")

    def host_network_down(self) -> None:
        """Undo `host_network_up`, and remove the host proxy's table if a killed server left it."""
        from kubelite.cluster import egress
        from kubelite.cluster.netns import delete_nft_table, guard_routes, remove_bridge

        s = self.spec
        delete_nft_table(f"{s.name}-host")
        delete_nft_table(egress.table_name(s.name))
        guard_routes(s.network, unreachable=[s.cluster_cidr], on_bridge=[s.service_cidr, s.lb_pool], present=False)
        remove_bridge(s.network)

    def cleanup_node(self, name: str) -> str:
        """Remove the node's pods (containers, sandboxes, mounts, cgroups) with its agent stopped;
        what went wrong ("" when all went)."""
        import subprocess
        import sys

        from kubelite.cluster.netns import netns_exists

        netns = self.spec.network.netns(self.spec.nodes[name])
        if not self.node_dir(name).exists():
            return ""
        argv = [sys.executable, "-m", "kubelite.cli.main", *self.node_args(name), "--cleanup"]
        if netns_exists(netns):
            argv = [*run_in(netns), *argv]
        result = subprocess.run(argv, capture_output=True, text=True, check=False)
        return "" if result.returncode == 0 else (result.stderr or result.stdout).strip()

    def stop_node(self, name: str) -> None:
        """Stop the node's agent and its pods, then remove its namespace and link."""
        import sys

        from kubelite.cluster.netns import remove_node

        self.node_daemon(name).stop()
        problem = self.cleanup_node(name)
        if problem:  # the rest still goes; `kubelite delete` says what was left
            print(f"warning: node {name}: not every pod was removed: {problem}", file=sys.stderr)
        self.remove_cgroup_parents([name])
        remove_node(self.spec.network, self.spec.nodes[name])

    def remove_cgroup_parents(self, names: list[str]) -> None:
        """The nodes' cgroup parents (`<cluster>/<node>` below our own cgroup, made by runc for the
        pods' cgroups and left when the last pod went), then the cluster's, in every hierarchy;
        a directory still holding a pod stays."""
        import contextlib
        import os

        from kubelite.agent.runtime.runc.cgroups import own_dirs

        for base in own_dirs():
            for name in names:
                with contextlib.suppress(OSError):
                    os.rmdir(base / self.spec.name / name)
            with contextlib.suppress(OSError):
                os.rmdir(base / self.spec.name)
