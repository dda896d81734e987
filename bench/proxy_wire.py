"""The wire half of bench/proxy.py: a node namespace with two httpd pods behind one ClusterIP
applied by kubelite's NftBackend, and measured runs from fresh client namespaces.

    klbp-cliK (198.18.241.100+K, one per run) ─┐
    klbp-pod1 (198.18.241.2, httpd) ───────────┼─ bridge klbp-br0 198.18.241.1/24 in klbp-node
    klbp-pod2 (198.18.241.3, httpd) ───────────┘  ClusterIP 198.19.241.10:80 → both pods

The node routes the Service range to the bridge and forwards with bridge-nf-call-iptables on (a pod
reaching a ClusterIP whose endpoint is on its own bridge needs both), ICMP redirects off. Clients
are in the pod subnet, so their ClusterIP traffic is not masqueraded (pod → Service, as in a
cluster). `WireNet` owns every namespace, link and process it makes: `down` stops httpd by PID and
deletes the namespaces, which takes the veths and the nftables table with them.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from kubelite.proxy.backends import NftBackend
from kubelite.proxy.model import NodeContext
from kubelite.proxy.serviceports import Endpoint, ServicePort

PREFIX = "klbp-"
NODE, BRIDGE = "klbp-node", "klbp-br0"
PODS = {"klbp-pod1": "198.18.241.2", "klbp-pod2": "198.18.241.3"}
GATEWAY, SUBNET = "198.18.241.1", "198.18.241.0/24"
VIP, VIP_RANGE = "198.19.241.10", "198.19.241.0/24"
TABLE = "klbp-proxy"
REQUEST_TIMEOUT = 5.0
RUN_TIMEOUT = 120.0
PROBE = """
import socket, sys
s = socket.create_connection((sys.argv[1], 80), timeout=1)
s.sendall(b"GET / HTTP/1.0\\r\\n\\r\\n")
print(s.makefile("rb").read().split(b"\\r\\n\\r\\n", 1)[-1].decode().strip())
"""

Result = dict[str, Any]


def sh(*cmd: str, check: bool = True, timeout: float = 30, input: str | None = None) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, input=input)
    if check and result.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({result.returncode}): {result.stderr.strip()}")
    return result


def batch(ns: str, *lines: str) -> None:
    sh("ip", "-n", ns, "-batch", "-", input="\n".join(lines) + "\n")


def our_namespaces() -> list[str]:
    return [ns for ns in sh("ip", "netns", "list", check=False).stdout.split() if ns.startswith(PREFIX)]


def sweep() -> None:
    """Delete the klbp-* namespaces a killed earlier run left behind."""
    for ns in our_namespaces():
        sh("ip", "netns", "del", ns, check=False)


class WireNet:
    def __init__(self) -> None:
        self.procs: list[subprocess.Popen[bytes]] = []
        self.clients = 0
        self._www = tempfile.TemporaryDirectory(prefix="klbp-www-")

    def __enter__(self) -> WireNet:
        try:
            self.up()
        except BaseException:
            self.down()
            raise
        return self

    def __exit__(self, *_exc: object) -> None:
        self.down()

    def up(self) -> None:
        sweep()
        print("wire: node namespace, bridge, 2 httpd pods, ClusterIP rules ...", flush=True)
        for ns in (NODE, *PODS):
            sh("ip", "netns", "add", ns)
        batch(NODE, f"link add {BRIDGE} type bridge", f"addr add {GATEWAY}/24 dev {BRIDGE}",
              f"link set {BRIDGE} up", "link set lo up", f"route add {VIP_RANGE} dev {BRIDGE}")
        sh("ip", "netns", "exec", NODE, "sysctl", "-qw", "net.ipv4.ip_forward=1",
           "net.bridge.bridge-nf-call-iptables=1", "net.ipv4.conf.all.send_redirects=0",
           f"net.ipv4.conf.{BRIDGE}.send_redirects=0")
        for i, (ns, ip) in enumerate(PODS.items(), start=1):
            self._attach(ns, ip, f"klbp-p{i}")
            self._serve(ns, f"pod{i}")
        asyncio.run(self._apply_rules())
        self._wait_serving()

    def _attach(self, ns: str, ip: str, veth: str) -> None:
        batch(NODE, f"link add {veth} type veth peer name eth0 netns {ns}", f"link set {veth} master {BRIDGE} up")
        batch(ns, f"addr add {ip}/24 dev eth0", "link set eth0 up", "link set lo up", f"route add default via {GATEWAY}")

    def _serve(self, ns: str, name: str) -> None:
        www = Path(self._www.name) / name
        www.mkdir()
        (www / "index.html").write_text(f"{name}\n")
        # `ip netns exec` execs httpd: the PID is the server's own
        self.procs.append(subprocess.Popen(["ip", "netns", "exec", ns, "busybox", "httpd", "-f", "-p", "0.0.0.0:80",
                                            "-h", str(www)], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                           stderr=subprocess.DEVNULL))

    async def _apply_rules(self) -> None:
        endpoints = tuple(Endpoint(ip, 80, "bench-node") for ip in PODS.values())
        service = ServicePort("bench", "web", "http", "tcp", VIP, 80, endpoints=endpoints)
        backend = NftBackend(netns=NODE, table=TABLE)
        await backend.sync({"bench/web": [service]}, ctx=NodeContext("bench-node", cluster_cidr=SUBNET), dirty=None)

    def _wait_serving(self) -> None:
        deadline = time.monotonic() + 10
        for target in (*PODS.values(), VIP):
            while True:
                got = sh("ip", "netns", "exec", NODE, sys.executable, "-c", PROBE, target, check=False, timeout=5)
                if got.returncode == 0 and got.stdout.strip().startswith("pod"):
                    break
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{target}:80 did not answer from the node: {got.stderr.strip()[-300:]}")
                time.sleep(0.05)

    def client(self) -> str:
        """A fresh client namespace on the bridge (no sockets, no TIME_WAIT from earlier runs)."""
        self.clients += 1
        ns, veth = f"klbp-cli{self.clients}", f"klbp-c{self.clients}"
        sh("ip", "netns", "add", ns)
        self._attach(ns, f"198.18.241.{100 + self.clients % 100}", veth)
        return ns

    def down(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
        for proc in self.procs:
            proc.wait(5)
        self.procs.clear()
        sweep()  # the table and the veths go with the namespaces
        self._www.cleanup()


def measured_run(net: WireNet, script: Path, targets: list[str], *, count: int, concurrency: int) -> Result:
    ns = net.client()
    try:
        out = sh("ip", "netns", "exec", ns, sys.executable, str(script), "--load", *targets, "--count", str(count),
                 "--concurrency", str(concurrency), timeout=RUN_TIMEOUT)
        result: Result = json.loads(out.stdout)
        return result
    finally:
        sh("ip", "netns", "del", ns, check=False)


def wire_runs(net: WireNet, *, script: Path, requests: int, concurrency: int,
              rounds: int) -> dict[tuple[str, int], list[Result]]:
    """Alternating direct and ClusterIP runs (the order flips each round, so a drift in the machine's
    load hits both), at concurrency 1 and `concurrency`."""
    targets = {"direct": list(PODS.values()), "clusterip": [VIP]}
    results: dict[tuple[str, int], list[Result]] = {}
    for c in dict.fromkeys((1, concurrency)):
        for r in range(rounds):
            order = list(targets) if r % 2 == 0 else list(reversed(targets))
            for name in order:
                print(f"wire: {name}, {requests} requests, concurrency {c}, round {r + 1}/{rounds}", flush=True)
                result = measured_run(net, script, targets[name], count=requests, concurrency=c)
                results.setdefault((name, c), []).append(result)
    return results
