"""A real machine as a node (`kubelite agent --runtime runc`): where the agent keeps its state, what
it checks before it starts, what it registers about the host, and the sweeps that keep the host
clean.

Layout of the node's data dir (`NodePaths`):
    images/               the image store (`kubelite image --data-dir DIR` works on the same one)
    runtime/              the runc runtime's root: sandbox records, bundles, runc state, CNI IPAM
    kubelet/              the kubelet's root dir: pods/<uid>/volumes/<plugin>/<volume>
    logs/                 container logs, <ns>_<pod>_<uid>/<container>/<n>.log (CRI format)
    kubelet.kubeconfig    the node's credentials (`kubelite.cluster.nodecreds`)

- `preflight`: root, the binaries the runtime runs and the CNI plugins, each problem with the exact
  package to install (or the flag to use instead);
- `choose_node_ip`: the InternalIP, from `ip -j` output: the source address the kernel would use
  towards the API server, unless that is loopback (a single-host cluster: 127.0.0.1 would be
  wrong for pods and for an API server elsewhere), then the address of the default route's
  interface, then any global address not on the pods' bridge;
- `host_capacity`: cpu, memory and ephemeral storage measured on the host;
- `remove_pods` and `remove_volumes` (`kubelite agent --cleanup`): containers, sandboxes,
  addresses, mounts, cgroups, volumes; then the bridge if no pod uses it (pods deleted while the
  agent was away are the kubelet's to remove when it comes back).

Pure decisions take what was read as arguments; the `probe_*` functions do the reading.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import os
import shutil
import subprocess
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kubelite.images.store import default_root
from kubelite.lib.net import is_ip

if TYPE_CHECKING:
    from kubelite.agent.runtime.runc import RuncRuntime

log = logging.getLogger(__name__)
Obj = dict[str, Any]

TOOLS = {"runc": "runc", "conmon": "conmon", "ip": "iproute2", "unshare": "util-linux", "setsid": "util-linux",
         "mount": "mount", "umount": "mount"}
CNI_PACKAGE = "containernetworking-plugins"


@dataclass(frozen=True)
class NodePaths:
    data_dir: Path

    @property
    def images(self) -> Path:
        return default_root(self.data_dir)

    @property
    def runtime(self) -> Path:
        return self.data_dir / "runtime"

    @property
    def kubelet(self) -> Path:
        return self.data_dir / "kubelet"

    @property
    def logs(self) -> Path:
        return self.data_dir / "logs"

    @property
    def kubeconfig(self) -> Path:
        from kubelite.cluster.nodecreds import kubeconfig_path  # lazily: it loads the PKI (cryptography)

        return kubeconfig_path(self.data_dir)


# ----- preflight ---------------------------------------------------------------------------------

def preflight(*, euid: int, missing_tools: Iterable[str], missing_cni: Iterable[str], cni_dir: Path) -> list[str]:
    """What stops the runc runtime from working here, each with what to do about it."""
    problems = []
    if euid != 0:
        problems.append("the runc runtime needs root (network namespaces, mounts, cgroups): run the agent as "
                        "root (sudo kubelite agent ...), or use --runtime fake for a node without containers")
    tools = sorted(set(missing_tools))
    if tools:
        packages = " ".join(sorted({TOOLS.get(Path(t).name, Path(t).name) for t in tools}))
        problems.append(f"{', '.join(tools)} not found: apt-get install -y {packages}")
    plugins = list(missing_cni)
    if plugins:
        problems.append(f"CNI plugins {', '.join(plugins)} not found in {cni_dir}: apt-get install -y "
                        f"{CNI_PACKAGE} (or point --cni-bin-dir at a directory holding them)")
    return problems


def probe_preflight(*, runc: str, conmon: str, cni_dir: Path) -> list[str]:
    from kubelite.agent.runtime.runc.cni import CniSettings

    tools = [t for t in TOOLS if t not in ("runc", "conmon")] + [runc, conmon]
    missing = [t for t in tools if shutil.which(t) is None]
    return preflight(euid=os.geteuid(), missing_tools=missing,
                     missing_cni=CniSettings(bin_dir=cni_dir).missing_plugins(), cni_dir=cni_dir)


# ----- the node's address ------------------------------------------------------------------------

def _usable(address: str | None) -> bool:
    if not address:
        return False
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return ip.version == 4 and not (ip.is_loopback or ip.is_link_local or ip.is_unspecified)


def _global_addresses(links: list[Obj], *, dev: str | None = None, skip: Iterable[str] = ()) -> list[str]:
    skipped = set(skip)
    found = []
    for link in links:
        name = str(link.get("ifname") or "")
        if name in skipped or (dev is not None and name != dev):
            continue
        found += [str(a.get("local")) for a in link.get("addr_info") or []
                  if a.get("family") == "inet" and a.get("scope") == "global" and _usable(a.get("local"))]
    return found


def choose_node_ip(*, route_to_api: list[Obj], default_routes: list[Obj], links: list[Obj],
                   skip_links: Iterable[str] = ()) -> str | None:
    """The InternalIP from `ip -j route get <api>`, `ip -j -4 route show default` and
    `ip -j -4 addr show` (see the module docstring for the order); None when the host has none."""
    for route in route_to_api:
        if _usable(route.get("prefsrc")):
            return str(route["prefsrc"])
    for route in default_routes:
        if _usable(route.get("prefsrc")):
            return str(route["prefsrc"])
        addresses = _global_addresses(links, dev=str(route.get("dev") or ""))
        if addresses:
            return addresses[0]
    addresses = _global_addresses(links, skip=skip_links)
    return addresses[0] if addresses else None


def _ip_json(*args: str) -> list[Obj]:
    try:
        out = subprocess.run(["ip", "-j", *args], capture_output=True, text=True, timeout=10).stdout
        value = json.loads(out) if out.strip() else []
    except (OSError, subprocess.SubprocessError, ValueError):
        return []
    return value if isinstance(value, list) else []


def probe_node_ip(api_host: str, *, skip_links: Iterable[str] = ()) -> str | None:
    """`choose_node_ip` on this host's routing table (`ip route get` sends nothing)."""
    route = _ip_json("route", "get", api_host) if is_ip(api_host) else []
    return choose_node_ip(route_to_api=route, default_routes=_ip_json("-4", "route", "show", "default"),
                          links=_ip_json("-4", "addr", "show"), skip_links=skip_links)




# ----- capacity ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Capacity:
    cpu: str
    memory: str
    ephemeral_storage: str


def capacity(*, cpus: int, meminfo: str, disk_bytes: int) -> Capacity:
    """Capacity as the kubelet reports it: whole CPUs, MemTotal in Ki, the filesystem's size."""
    mem_kib = 0
    for line in meminfo.splitlines():
        if line.startswith("MemTotal:"):
            mem_kib = int(line.split()[1])
    return Capacity(cpu=str(max(1, cpus)), memory=f"{mem_kib}Ki", ephemeral_storage=f"{disk_bytes // 1024}Ki")


def host_capacity(data_dir: Path) -> Capacity:
    meminfo = Path("/proc/meminfo").read_text()
    return capacity(cpus=len(os.sched_getaffinity(0)), meminfo=meminfo,
                    disk_bytes=shutil.disk_usage(_existing(data_dir)).total)


def _existing(path: Path) -> Path:
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


# ----- sweeps ------------------------------------------------------------------------------------

async def remove_pods(runtime: RuncRuntime, uids: Iterable[str]) -> list[str]:
    """Remove each pod's containers and sandbox; the errors of those that left something behind."""
    errors = []
    for uid in uids:
        try:
            await runtime.remove_sandbox(uid)
        except Exception as exc:  # keep going: the others must still go
            errors.append(f"pod {uid}: {exc}")
    return errors


async def remove_volumes(root: Path) -> list[str]:
    """Tear down every pod's volumes under the kubelet's root dir (tmpfs mounts, files)."""
    from kubelite.agent.volumes import VolumeManager

    async def no_fetch(kind: str, namespace: str, name: str) -> None:
        return None

    volumes, errors = VolumeManager(root, no_fetch), []
    for uid in volumes.pod_uids():
        try:
            await volumes.teardown(uid)
        except OSError as exc:
            errors.append(f"volumes of pod {uid}: {exc}")
    return errors


def remove_bridge_if_unused(bridge: str, *, run: Callable[..., Any] = subprocess.run) -> bool:
    """Delete the pods' bridge once no veth is attached to it (the last thing `--cleanup` does)."""
    ports = Path(f"/sys/class/net/{bridge}/brif")
    if not ports.exists() or any(ports.iterdir()):
        return False
    run(["ip", "link", "delete", bridge], capture_output=True, check=False)
    return True
