"""What a node agent is told: the node it registers (identity, resources, address) and the timings
of its heartbeats, with upstream's defaults.

`NodeConfig` describes one node and is all a pure builder needs to produce the Node object;
`KubeletConfig` holds the timings shared by every kubelet of a process.
"""

from __future__ import annotations

import ipaddress
import platform
import uuid
import zlib
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

KUBELET_VERSION = "v1.37.0"
DEFAULT_NODE_IP_RANGE = "198.19.128.0/18"
NODE_IP_RESERVED = 16  # the first addresses of the range belong to the control plane
_ARCH = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "ppc64le": "ppc64le", "s390x": "s390x"}


@cache
def host_arch() -> str:
    machine = platform.machine()
    return _ARCH.get(machine, machine or "amd64")


@cache
def host_os_image() -> str:
    try:
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                return line.split("=", 1)[1].strip().strip('"')
    except OSError:
        pass
    return "Linux"


@cache
def host_kernel() -> str:
    return platform.release() or "unknown"


@dataclass(frozen=True)
class NodeConfig:
    name: str
    internal_ip: str
    cpu: str = "4"
    memory: str = "16Gi"
    pods: int = 110
    ephemeral_storage: str = "100Gi"
    arch: str = field(default_factory=host_arch)
    os_image: str = field(default_factory=host_os_image)
    kernel_version: str = field(default_factory=host_kernel)
    kubelet_version: str = KUBELET_VERSION
    labels: tuple[tuple[str, str], ...] = ()
    taints: tuple[tuple[str, str, str], ...] = ()  # (key, value, effect) registered with the node
    kubelet_port: int = 10250

    boot_id: str = field(default_factory=lambda: str(uuid.uuid4()))  # new each time the agent starts

    def machine_id(self) -> str:
        return uuid.uuid5(uuid.NAMESPACE_DNS, f"kubelite-node.{self.name}").hex

    def system_uuid(self) -> str:
        return str(uuid.uuid5(uuid.NAMESPACE_DNS, f"kubelite-node.{self.name}"))


@dataclass(frozen=True)
class KubeletConfig:
    lease_duration: int = 40  # seconds; upstream nodeLeaseDurationSeconds
    renew_interval: float = 10.0  # upstream: a quarter of the lease duration; status is checked as often
    status_report_frequency: float = 300.0  # upstream nodeStatusReportFrequency: post even if unchanged
    ready_delay: float = 0.0  # hollow pods turn Ready this long after their containers start
    record_events: bool = True
    register_concurrency: int = 64
    # Multiplies the kubelet's own waits (restart and image back-off, probe timings, retries,
    # volume refresh) so tests see CrashLoopBackOff in seconds; messages keep upstream's numbers.
    time_scale: float = 1.0
    root_dir: str = ""  # where pod volumes live (<root_dir>/pods/<uid>); "" = no volumes (hollow nodes)
    sync_frequency: float = 60.0  # upstream syncFrequency: how often configMap/secret volumes are refreshed
    # Service environment variables (KUBERNETES_SERVICE_HOST, ...): None = only for runtimes that run
    # processes (the hollow runtime ignores env, so hollow nodes skip the service reads)
    service_links: bool | None = None


def node_ip(index: int, ip_range: str = DEFAULT_NODE_IP_RANGE) -> str:
    """The `index`th node address of the range, past the control plane's reserved addresses."""
    network = ipaddress.ip_network(ip_range)
    usable = network.num_addresses - NODE_IP_RESERVED - 1
    if not 0 <= index < usable:
        raise ValueError(f"node address index {index} outside {ip_range} ({usable} node addresses)")
    return str(network.network_address + NODE_IP_RESERVED + index)


def node_ip_for_name(name: str, ip_range: str = DEFAULT_NODE_IP_RANGE) -> str:
    """A stable fake address for a node named `name` (for agents not given one)."""
    network = ipaddress.ip_network(ip_range)
    usable = network.num_addresses - NODE_IP_RESERVED - 1
    return node_ip(zlib.crc32(name.encode()) % usable, ip_range)
