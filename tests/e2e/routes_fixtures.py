"""Two "nodes" and a "host" as network namespaces for the pod-network e2e tests, wired by hand as
runtime-recipes §1/§2 do, so nothing touches the machine's own routes:

    klrt-h (the host role): bridge klrt0 198.19.131.1/24
       ├── klrt-a (node-a) eth0 198.19.131.2/24, pod bridge cni0 198.18.231.1/24 ── klrt-pa 198.18.231.2
       └── klrt-b (node-b) eth0 198.19.131.3/24, pod bridge cni0 198.18.232.1/24 ── klrt-pb 198.18.232.2

Each node forwards (ip_forward=1) and has no route to the other node's pods until NodeRoutes adds
one. Pod interfaces and bridges use MTU 1450, as the VXLAN mode requires. Each pod runs busybox
httpd: /cgi-bin/id answers "<pod> <client address>", so a test sees who answered and that the
source address was kept. Everything is named klrt-*; `down` kills our processes by PID and
deletes the namespaces (taking their veths, bridges and vxlan devices with them).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.proxy_fixtures import sh

HOST, BRIDGE, HOST_IP = "klrt-h", "klrt0", "198.19.131.1"
TOOLS = ("ip", "bridge", "busybox", "curl")
MTU = 1450


@dataclass(frozen=True)
class NodeNet:
    name: str  # the Node object's name
    netns: str
    ip: str
    pod_cidr: str
    pod_netns: str
    pod_ip: str

    @property
    def gateway(self) -> str:
        return self.pod_ip.rsplit(".", 1)[0] + ".1"


NODES = (NodeNet("node-a", "klrt-a", "198.19.131.2", "198.18.231.0/24", "klrt-pa", "198.18.231.2"),
         NodeNet("node-b", "klrt-b", "198.19.131.3", "198.18.232.0/24", "klrt-pb", "198.18.232.2"))
SCRATCH = "klrt-m"  # the many-routes measurement
NETWORK = (HOST, *(n.netns for n in NODES), *(n.pod_netns for n in NODES))
NAMESPACES = (*NETWORK, SCRATCH)


def require_host() -> None:
    """Fail (never skip) with what to do when this host cannot run these tests."""
    if os.geteuid() != 0:
        pytest.fail("the pod network e2e tests need root (CI runs them as root via scripts/test)")
    missing = [t for t in TOOLS if shutil.which(t) is None]
    if missing:
        pytest.fail(f"missing {', '.join(missing)}: apt-get install iproute2 busybox-static curl")


def batch(netns: str, *lines: str) -> None:
    sh("ip", "-n", netns, "-batch", "-", input="\n".join(lines) + "\n")


def sweep() -> None:
    """Delete namespaces of ours that a crashed earlier run left (by name)."""
    listed = {line.split()[0] for line in sh("ip", "netns", "list", check=False).stdout.splitlines() if line.strip()}
    for ns in NAMESPACES:
        if ns in listed:
            sh("ip", "netns", "del", ns, check=False)


class PodNet:
    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.procs: list[subprocess.Popen[bytes]] = []

    def up(self) -> PodNet:
        sweep()
        for ns in NETWORK:
            sh("ip", "netns", "add", ns)
        batch(HOST, "link set lo up", f"link add {BRIDGE} type bridge", f"addr add {HOST_IP}/24 dev {BRIDGE}",
              f"link set {BRIDGE} up")
        for i, node in enumerate(NODES):
            self._node(node, f"klrt-v{i}")
            self._serve(node)
        self._wait_serving()
        return self

    def _node(self, node: NodeNet, uplink: str) -> None:
        batch(HOST, f"link add {uplink} type veth peer name eth0 netns {node.netns}",
              f"link set {uplink} master {BRIDGE} up")
        gateway = node.gateway
        batch(node.netns, "link set lo up", f"addr add {node.ip}/24 dev eth0", "link set eth0 up",
              f"link add cni0 mtu {MTU} type bridge", f"addr add {gateway}/24 dev cni0", "link set cni0 up",
              f"link add veth0 mtu {MTU} type veth peer name eth0 netns {node.pod_netns}",
              "link set veth0 master cni0 up")
        # promote_secondaries: a test moves the node to a second address, then deletes the first
        sh("ip", "netns", "exec", node.netns, "sysctl", "-qw", "net.ipv4.ip_forward=1",
           "net.ipv4.conf.eth0.promote_secondaries=1")
        batch(node.pod_netns, "link set lo up", f"addr add {node.pod_ip}/24 dev eth0", "link set eth0 up",
              f"route add default via {gateway}")

    def _serve(self, node: NodeNet) -> None:
        www = self.tmp / f"www-{node.name}"
        (www / "cgi-bin").mkdir(parents=True)
        cgi = www / "cgi-bin/id"
        cgi.write_text(f'#!/bin/sh\necho "Content-Type: text/plain"\necho\necho "{node.pod_netns} $REMOTE_ADDR"\n')
        cgi.chmod(0o755)
        # `ip netns exec` execs busybox: the PID is httpd's
        self.procs.append(subprocess.Popen(
            ["ip", "netns", "exec", node.pod_netns, "busybox", "httpd", "-f", "-p", "0.0.0.0:80", "-h", str(www)],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))

    def _wait_serving(self) -> None:
        deadline = time.monotonic() + 10
        for node in NODES:
            while not self.ask(node.netns, node.pod_ip).startswith(node.pod_netns):
                assert time.monotonic() < deadline, f"httpd in {node.pod_netns} did not start"
                time.sleep(0.05)

    def down(self) -> None:
        for proc in self.procs:
            proc.kill()
        for proc in self.procs:
            proc.wait(5)
        self.procs.clear()
        sweep()

    # ----- probes ----------------------------------------------------------------------------------

    def ask(self, netns: str, ip: str, *, timeout: float = 2) -> str:
        """GET /cgi-bin/id from `netns`: "<pod> <our address as the pod saw it>", or "" on failure."""
        result = sh("ip", "netns", "exec", netns, "curl", "-s", "-m", str(timeout), f"http://{ip}/cgi-bin/id",
                    check=False)
        return result.stdout.strip() if result.returncode == 0 else ""

    def ping(self, netns: str, ip: str) -> bool:
        return sh("ip", "netns", "exec", netns, "busybox", "ping", "-c", "1", "-W", "2", ip, check=False).returncode == 0

    def reset_addresses(self) -> None:
        """Give every node back its own address only (tests move node-b)."""
        for node in NODES:
            batch(node.netns, "addr flush dev eth0", f"addr add {node.ip}/24 dev eth0")


def routes_of(netns: str, proto: int = 211) -> dict[str, str]:
    """Our routes in `netns`: destination → "via <gw>[ dev <dev> onlink]"."""
    out = {}
    for row in json.loads(sh("ip", "-n", netns, "-j", "route", "show", "proto", str(proto)).stdout or "[]"):
        dev = f" dev {row['dev']} onlink" if "onlink" in row.get("flags", []) else ""
        out[row["dst"]] = f"via {row.get('gateway')}{dev}"
    return out


def fdb_of(netns: str, device: str) -> set[tuple[str, str]]:
    rows = json.loads(sh("bridge", "-n", netns, "-j", "fdb", "show", "dev", device).stdout or "[]")
    return {(r["mac"], r["dst"]) for r in rows if r.get("dst")}


def neighbours_of(netns: str, device: str) -> set[tuple[str, str]]:
    rows = json.loads(sh("ip", "-n", netns, "-j", "neigh", "show", "dev", device, "nud", "permanent").stdout or "[]")
    return {(r["dst"], r["lladdr"]) for r in rows}


def link_json(netns: str, device: str) -> dict[str, Any] | None:
    result = sh("ip", "-n", netns, "-j", "-s", "-d", "link", "show", "dev", device, check=False)
    rows = json.loads(result.stdout) if result.returncode == 0 and result.stdout.strip() else []
    return rows[0] if rows else None
