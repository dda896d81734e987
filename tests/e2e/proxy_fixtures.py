"""A node in a network namespace for the proxy's e2e tests, so nothing touches the host's own
ruleset or routes:

    klp-test-ext (198.19.250.130) --veth-- klp-test-node (198.19.250.129, the "host")
                                              bridge klp-br0 198.18.250.1/24 (hairpin on)
                                   klp-test-pod1 .2   klp-test-pod2 .3   klp-test-pod3 .4 (client)

pod1 and pod2 run busybox httpd (index.html = their name, /cgi-bin/id = "name client-address")
and a UDP responder on port 53; pod3 is a client-only pod. The node routes the Service range
198.19.250.0/25 to the bridge (so host-originated VIP traffic never takes a default route) and has
ip_forward and bridge-nf-call-iptables on (pod → VIP → pod on the same bridge needs both), and
ICMP redirects off.
Everything is named klp-test-*; `down` kills our processes by PID and deletes the namespaces
(which takes their veths and the nftables table with them).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

NODE, EXT = "klp-test-node", "klp-test-ext"
PODS = {"pod1": "198.18.250.2", "pod2": "198.18.250.3", "pod3": "198.18.250.4"}
BACKENDS = ("pod1", "pod2")
BRIDGE, GATEWAY, SUBNET = "klp-br0", "198.18.250.1", "198.18.250.0/24"
NODE_IP, EXT_IP = "198.19.250.129", "198.19.250.130"
VIP_RANGE = "198.19.250.0/25"
TOOLS = ("ip", "bridge", "nft", "curl", "busybox", "sysctl")
UDP_RESPONDER = """
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("0.0.0.0", 53))
while True:
    data, addr = s.recvfrom(2048)
    s.sendto(sys.argv[1].encode() + b" " + addr[0].encode(), addr)
"""


def require_host() -> None:
    """Fail (never skip) with what to do when the host cannot run these tests."""
    if os.geteuid() != 0:
        pytest.fail("the proxy e2e tests need root (CI runs them as root via scripts/test)")
    missing = [t for t in TOOLS if shutil.which(t) is None]
    if missing:
        pytest.fail(f"missing {', '.join(missing)}: apt-get install iproute2 nftables curl busybox-static procps")


def netns_name(pod: str) -> str:
    return f"klp-test-{pod}"


def sh(*cmd: str, check: bool = True, timeout: float = 30, input: str | None = None) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, input=input)
    if check and result.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed ({result.returncode}): {result.stderr.strip()}")
    return result


def in_ns(ns: str, *cmd: str, **kw: object) -> subprocess.CompletedProcess[str]:
    return sh("ip", "netns", "exec", ns, *cmd, **kw)  # type: ignore[arg-type]


def all_namespaces() -> list[str]:
    return [NODE, EXT, *(netns_name(p) for p in PODS)]


def sweep() -> None:
    """Remove namespaces a crashed earlier run left behind (ours by name)."""
    listed = sh("ip", "netns", "list", check=False).stdout.split()
    for ns in all_namespaces():
        if ns in listed:
            sh("ip", "netns", "del", ns, check=False)


class ProxyNet:
    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.procs: list[subprocess.Popen[bytes]] = []

    def up(self) -> ProxyNet:
        sweep()
        for ns in all_namespaces():
            sh("ip", "netns", "add", ns)
        self._node()
        for i, (pod, ip) in enumerate(PODS.items(), start=1):
            self._pod(pod, ip, f"klp-v{i}")
        self._external()
        for pod in BACKENDS:
            self._serve(pod)
        self._wait_serving()
        return self

    def _node(self) -> None:
        sh("ip", "-n", NODE, "-batch", "-", input="\n".join([
            f"link add {BRIDGE} type bridge", f"addr add {GATEWAY}/24 dev {BRIDGE}", f"link set {BRIDGE} up",
            "link set lo up", f"route add {VIP_RANGE} dev {BRIDGE}"]) + "\n")
        # no ICMP redirects for pod traffic routed back out of the bridge (pod -> VIP): they would use
        # up the per-client ICMP rate limit that a UDP reject (port unreachable) needs
        in_ns(NODE, "sysctl", "-qw", "net.ipv4.ip_forward=1", "net.bridge.bridge-nf-call-iptables=1",
              "net.ipv4.conf.all.send_redirects=0", f"net.ipv4.conf.{BRIDGE}.send_redirects=0")

    def _pod(self, pod: str, ip: str, veth: str) -> None:
        ns = netns_name(pod)
        sh("ip", "-n", NODE, "-batch", "-", input=f"link add {veth} type veth peer name eth0 netns {ns}\n"
           f"link set {veth} master {BRIDGE} up\n")
        sh("bridge", "-n", NODE, "link", "set", "dev", veth, "hairpin", "on")
        sh("ip", "-n", ns, "-batch", "-", input=f"addr add {ip}/24 dev eth0\nlink set eth0 up\nlink set lo up\n"
           f"route add default via {GATEWAY}\n")

    def _external(self) -> None:
        sh("ip", "-n", NODE, "-batch", "-", input=f"link add klp-up0 type veth peer name eth0 netns {EXT}\n"
           f"addr add {NODE_IP}/25 dev klp-up0\nlink set klp-up0 up\n")
        sh("ip", "-n", EXT, "-batch", "-", input=f"addr add {EXT_IP}/25 dev eth0\nlink set eth0 up\n"
           f"link set lo up\nroute add {SUBNET} via {NODE_IP}\nroute add {VIP_RANGE} via {NODE_IP}\n")

    def _serve(self, pod: str) -> None:
        www = self.tmp / f"www-{pod}"
        (www / "cgi-bin").mkdir(parents=True)
        (www / "index.html").write_text(f"{pod}\n")
        cgi = www / "cgi-bin/id"
        cgi.write_text(f'#!/bin/sh\necho "Content-Type: text/plain"\necho\necho "{pod} $REMOTE_ADDR"\n')
        cgi.chmod(0o755)
        for cmd in (["busybox", "httpd", "-f", "-p", "0.0.0.0:80", "-h", str(www)],
                    [sys.executable, "-c", UDP_RESPONDER, pod]):
            self.procs.append(subprocess.Popen(["ip", "netns", "exec", netns_name(pod), *cmd],
                                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                               stdin=subprocess.DEVNULL))

    def _wait_serving(self) -> None:
        deadline = time.monotonic() + 10
        for pod in BACKENDS:
            while self.curl(NODE, f"http://{PODS[pod]}/", count=1) != [pod]:
                assert time.monotonic() < deadline, f"{pod} httpd did not start"
                time.sleep(0.05)
            while not self.udp(NODE, PODS[pod], 53, count=1)[0].startswith(pod):
                assert time.monotonic() < deadline, f"{pod} UDP responder did not start"
                time.sleep(0.05)

    def down(self) -> None:
        for proc in self.procs:
            proc.kill()  # `ip netns exec` execs the command: the PID is the server's
        for proc in self.procs:
            proc.wait(5)
        self.procs.clear()
        sweep()

    # ----- clients -------------------------------------------------------------------------------

    def curl(self, ns: str, url: str, *, count: int = 1, timeout: float = 2) -> list[str]:
        """`count` sequential requests (each a new connection: httpd closes it) from one curl;
        one answer line per request that succeeded."""
        result = in_ns(ns, "curl", "-s", "-m", str(timeout), *([url] * count), check=False, timeout=60 + count)
        return result.stdout.splitlines()

    def curl_status(self, ns: str, url: str, *, timeout: float = 3) -> tuple[int, float]:
        """curl's exit code and how long it took (7: refused)."""
        started = time.monotonic()
        result = in_ns(ns, "curl", "-s", "-m", str(timeout), url, check=False)
        return result.returncode, time.monotonic() - started

    def udp(self, ns: str, ip: str, port: int, *, count: int) -> list[str]:
        """`count` datagrams, each from a fresh socket (a new conntrack flow); the answers, or
        `ERR <exception>` (a timeout is `ERR TimeoutError`)."""
        program = (f"import socket\nfor i in range({count}):\n"
                   "    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(1)\n"
                   "    try:\n"
                   f"        s.connect(('{ip}', {port})); s.send(b'q'); print(s.recv(2048).decode())\n"
                   "    except OSError as e: print('ERR', type(e).__name__)\n"
                   "    s.close()\n")
        return in_ns(ns, sys.executable, "-c", program, check=False, timeout=30 + count).stdout.splitlines()
