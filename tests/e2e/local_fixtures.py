"""A two-node runc cluster made by `kubelite start`, exactly as a user makes one, for the e2e tests
of Services on the wire and of the tutorial.

Its shape keeps it apart from a user's cluster on the same machine (which uses kubelite0,
198.19.128.0/24, 198.18.0.0/16, 198.19.0.0/17, ports 6443/10053): its own name (node names,
namespaces, nft tables), bridge, address ranges, API and DNS ports, data dir and $HOME (so the
kubeconfig merge lands in the test's home). Teardown is `kubelite delete`, then a check that
nothing of it is left on the machine: namespaces, links, nft tables, routes, mounts, cgroups,
processes.
"""

from __future__ import annotations

import contextlib
import http.client
import ipaddress
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests import support
from tests.integration.conftest import KUBECTL, free_port

NAME = "klt"
SHAPE = {"--name": NAME, "--bridge": f"{NAME}0", "--node-network": "198.19.132.0/24",
         "--cluster-cidr": "198.18.208.0/20", "--service-cidr": "198.19.160.0/20", "--lb-pool": "198.19.202.0/24",
         "--node-monitor-grace-period": "6", "--offline": ""}  # nothing leaves the machine
HOST_IP = "198.19.132.1"
NODE_IPS = ("198.19.132.2", "198.19.132.3")
TIMEOUT = 90.0
NUL = b"\0"


def host_problems() -> list[str]:
    problems = [] if os.geteuid() == 0 else ["not root"]
    for tool in ("runc", "conmon", "nft", "ip", "nsenter"):
        if shutil.which(tool) is None:
            problems.append(f"{tool} missing (scripts/test installs it)")
    return problems


def wait_for(check: Callable[[], Any], *, timeout: float = TIMEOUT, what: str = "condition") -> Any:
    return support.wait_for(check, timeout=timeout, what=what, interval=0.2)


def http_get(host: str, port: int, path: str = "/cgi-bin/id", *, timeout: float = 3.0) -> str:
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        body = response.read().decode(errors="replace")
        if response.status != 200:
            raise OSError(f"HTTP {response.status} from {host}:{port}{path}")
        return body.strip()
    finally:
        conn.close()


@dataclass
class LocalCluster:
    root: Path
    port: int = field(default_factory=free_port)
    dns_port: int = field(default_factory=free_port)
    registry_port: int = field(default_factory=free_port)

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def env(self) -> dict[str, str]:
        return {**os.environ, "HOME": str(self.root / "home"), "KUBECONFIG": ""}

    def kubelite(self, *args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "kubelite.cli.main", *args, "--data-dir", str(self.data)],
                              capture_output=True, text=True, env=self.env, timeout=timeout)

    def start(self, *extra: str) -> subprocess.CompletedProcess[str]:
        shape = [x for kv in SHAPE.items() for x in kv if x]
        nodes = [] if "--nodes" in extra else ["--nodes", "2"]
        return self.kubelite("start", *nodes, "--port", str(self.port), "--dns-port", str(self.dns_port),
                             "--registry-port", str(self.registry_port), *shape, *extra)

    def kubectl(self, *args: str, check: bool = True, timeout: float = 120, stdin: str | None = None) -> str:
        result = subprocess.run([KUBECTL, f"--cache-dir={self.root / 'kube-cache'}", *args], capture_output=True,
                                text=True, env=self.env, timeout=timeout, input=stdin)
        if check and result.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed ({result.returncode}):\n{result.stderr}")
        return result.stdout + (result.stderr if not check else "")

    def json(self, *args: str) -> Any:
        return json.loads(self.kubectl(*args, "-o", "json"))

    def apply(self, manifest: dict[str, Any]) -> None:
        self.kubectl("apply", "-f", "-", stdin=json.dumps(manifest))

    def pods(self, selector: str) -> list[dict[str, Any]]:
        return list(self.json("get", "pods", "-l", selector)["items"])

    def running(self, selector: str, count: int) -> list[dict[str, Any]]:
        """Wait until exactly `count` pods match, not terminating, and all are Ready; return them.
        (Terminating pods are left out: those of a dead node stay Terminating until it returns.)"""
        def ready() -> list[dict[str, Any]] | None:
            pods = [p for p in self.pods(selector) if not p["metadata"].get("deletionTimestamp")]
            ok = [p for p in pods if any(c["type"] == "Ready" and c["status"] == "True"
                                         for c in p.get("status", {}).get("conditions", []))]
            return ok if len(ok) == count == len(pods) else None

        return list(wait_for(ready, what=f"{count} ready pods {selector}"))

    def pod_exec(self, pod: str, script: str, *, check: bool = True) -> str:
        return self.kubectl("exec", pod, "--", "sh", "-c", script, check=check)

    def pod_http(self, pod: str, host: str, port: int, path: str = "/cgi-bin/id") -> str:
        request = f"GET {path} HTTP/1.0\\r\\nHost: {host}\\r\\n\\r\\n"
        return self.pod_exec(pod, f"printf '{request}' | nc -w 3 {host} {port} | tail -1").strip()

    def service(self, name: str) -> dict[str, Any]:
        return dict(self.json("get", "service", name))

    def netns_nft(self, index: int) -> str:
        return subprocess.run(["ip", "netns", "exec", f"{NAME}0-n{index}", "nft", "list", "table", "ip", NAME],
                              capture_output=True, text=True).stdout


@contextlib.contextmanager
def running_cluster(root: Path) -> Iterator[LocalCluster]:
    """A started cluster for the with-block; `kubelite delete` after, checked to leave nothing."""
    problems = host_problems()
    assert not problems, f"this host cannot run runc nodes: {problems}"
    cluster = LocalCluster(root)
    try:
        started = cluster.start()
        assert started.returncode == 0, started.stdout + started.stderr
        yield cluster
    finally:
        deleted = cluster.kubelite("delete")
        assert deleted.returncode == 0, deleted.stdout + deleted.stderr
        assert leftovers(root) == []


def spread(get: Callable[[], str], count: int, *, workers: int = 8) -> Counter[str]:
    with ThreadPoolExecutor(workers) as pool:
        return Counter(pool.map(lambda _: get(), range(count)))


class Load:
    """`clients` threads requesting `get` in a loop until stopped; counts answers and failures."""

    def __init__(self, get: Callable[[], str], *, clients: int) -> None:
        self.get, self.clients = get, clients
        self.answers: Counter[str] = Counter()
        self.failures: list[str] = []
        self._stop = False
        self._pool = ThreadPoolExecutor(clients)
        self._futures: list[Any] = []

    def __enter__(self) -> Load:
        self._futures = [self._pool.submit(self._client) for _ in range(self.clients)]
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop = True
        for future in self._futures:
            future.result()
        self._pool.shutdown()

    def _client(self) -> None:
        while not self._stop:
            try:
                self.answers[self.get()] += 1
            except Exception as exc:
                self.failures.append(f"{time.strftime('%H:%M:%S')} {exc!r}")


@dataclass(frozen=True)
class Shape:
    """What names a cluster's things on the machine (the e2e clusters', the benches')."""
    name: str
    bridge: str
    networks: tuple[str, ...]  # its CIDRs: nodes, pods, Services, LoadBalancers

    def owns(self, name: str) -> bool:
        """Whether a netns or link is this cluster's: the bridge, a node's `<bridge>-n<i>`, or a
        pod's `<name><i>-<uid>` (not another cluster's whose name merely starts the same)."""
        return re.fullmatch(rf"{re.escape(self.bridge)}(-n\d+)?|{re.escape(self.name)}[1-9]\d*-.+", name) is not None


E2E_SHAPE = Shape(NAME, f"{NAME}0", (SHAPE["--node-network"], SHAPE["--cluster-cidr"], SHAPE["--service-cidr"],
                                     SHAPE["--lb-pool"]))


def route_inside(route: str, networks: tuple[str, ...]) -> bool:
    """Whether a route of `ip route` (`198.18.224.0/24 via ...`, `unreachable 198.18.224.0/20`)
    is to an address range inside one of `networks`."""
    for word in route.split()[:2]:
        try:
            target = ipaddress.IPv4Network(word, strict=False)
        except ValueError:
            continue
        return any(target.subnet_of(ipaddress.IPv4Network(n)) for n in networks)
    return False


def _lines(*argv: str) -> list[str]:
    return subprocess.run(argv, capture_output=True, text=True, check=False).stdout.splitlines()


def _cmdline(pid: str) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def leftovers(root: Path, shape: Shape = E2E_SHAPE) -> list[str]:
    """What of the cluster is still on the machine (empty after `kubelite delete`): namespaces
    (nodes `<bridge>-n<i>`, pods `<name><i>-<uid>`), links, nft tables, routes, mounts and processes
    under `root`, cgroups."""
    found = [f"netns {line.split()[0]}" for line in _lines("ip", "netns", "list") if shape.owns(line.split()[0])]
    found += [f"link {name}" for line in _lines("ip", "-o", "link")
              if shape.owns(name := line.split(":")[1].strip().split("@")[0])]
    found += [f"nft {line}" for line in _lines("nft", "list", "tables")
              if line.split()[-1] in (shape.name, f"{shape.name}-host", f"{shape.name}-egress")]
    found += [f"route {line}" for line in _lines("ip", "route") if route_inside(line, shape.networks)]
    found += [f"mount {line.split()[4]}" for line in Path("/proc/self/mountinfo").read_text().splitlines()
              if str(root) in line]
    found += [f"process {pid} {_cmdline(pid).replace(NUL, b' ')[:120]!r}" for pid in os.listdir("/proc")
              if pid.isdigit() and int(pid) != os.getpid() and str(root).encode() in _cmdline(pid)]
    # os.walk, not rglob: other tests' cgroups come and go meanwhile, and os.walk skips what vanished
    found += [f"cgroup {top}/{shape.name}" for top, dirs, _ in os.walk("/sys/fs/cgroup") if shape.name in dirs]
    return found
