"""The clusters `bench/start.py` times: each a `kubelite start` runc cluster with a shape of its own
(name klb, bridge klb0, its own address ranges, free ports, a temp data dir and $HOME), so it runs
beside a user's cluster and beside the e2e tests' (klt). `StartCommand` runs `kubelite start` in the
background and timestamps its progress lines; `ReadyzPoller` notes the API server's first 200 from
/readyz meanwhile. `cluster_session` deletes the cluster with `kubelite delete` whatever happened
(Ctrl-C held off meanwhile) and checks the machine for leftovers.
"""

from __future__ import annotations

import contextlib
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from bench.start_probes import Shape, leftovers
from tests.e2e.local_fixtures import LocalCluster

REPO = Path(__file__).resolve().parent.parent
SHAPE = Shape(name="klb", bridge="klb0",
              networks=("198.19.133.0/24", "198.18.224.0/20", "198.19.176.0/20", "198.19.203.0/24"))
SHAPE_ARGS = ["--name", SHAPE.name, "--bridge", SHAPE.bridge, "--node-network", SHAPE.networks[0],
              "--cluster-cidr", SHAPE.networks[1], "--service-cidr", SHAPE.networks[2], "--lb-pool", SHAPE.networks[3]]
FIRST_NODE_IP = "198.19.133.2"
KUBERNETES_SERVICE_IP = "198.19.176.1"  # first address of the service CIDR
STEP_TIMEOUT = 60.0


class BenchError(Exception):
    pass


def free_ports(count: int) -> list[int]:
    """Distinct loopback ports free for both TCP and UDP (the DNS port serves both)."""
    ports: list[int] = []
    while len(ports) < count:
        with socket.socket() as tcp:
            tcp.bind(("127.0.0.1", 0))
            port = int(tcp.getsockname()[1])
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
                try:
                    udp.bind(("127.0.0.1", port))
                except OSError:
                    continue
        if port not in ports:
            ports.append(port)
    return ports


@dataclass
class Cluster(LocalCluster):
    """The e2e fixtures' cluster helpers (data dir, $HOME, kubectl) with the bench's shape, its node
    count, and ports free for UDP as well (the DNS port)."""
    nodes: int = 1
    delete_seconds: float = 0.0  # how long `kubelite delete` took, once done

    def __post_init__(self) -> None:
        self.port, self.dns_port, self.registry_port = free_ports(3)

    def start_argv(self) -> list[str]:
        return [sys.executable, "-m", "kubelite.cli.main", "start", "--nodes", str(self.nodes), "--runtime", "runc",
                "--data-dir", str(self.data), "--port", str(self.port), "--dns-port", str(self.dns_port),
                "--registry-port", str(self.registry_port), *SHAPE_ARGS]

    def delete(self) -> subprocess.CompletedProcess[str]:
        """`kubelite delete` in a session of its own, out of reach of a terminal's Ctrl-C."""
        return subprocess.run([sys.executable, "-m", "kubelite.cli.main", "delete", "--data-dir", str(self.data)],
                              capture_output=True, text=True, env=self.env, cwd=REPO, timeout=120, check=False,
                              start_new_session=True)


class ReadyzPoller(threading.Thread):
    """Polls https://127.0.0.1:<port>/readyz until the first 200; `answered` is when, since t0."""

    def __init__(self, port: int, t0: float) -> None:
        super().__init__(daemon=True)
        self.url, self.t0 = f"https://127.0.0.1:{port}/readyz", t0
        self.answered: float | None = None
        self.stop = threading.Event()
        self.context = ssl.create_default_context()
        self.context.check_hostname = False
        self.context.verify_mode = ssl.CERT_NONE  # liveness of our own local server only

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                with urllib.request.urlopen(self.url, context=self.context, timeout=1) as response:
                    if response.status == 200:
                        self.answered = time.monotonic() - self.t0
                        return
            except OSError:
                pass
            self.stop.wait(0.02)


def step_key(line: str) -> str:
    """A progress line of `kubelite start` as the same row for every cluster size: without its
    parenthesis ("* Starting node klb-m02 (198.19.133.3, runc)"), its node count, or its time
    ("* Done in 2.6s! ...")."""
    text = line.removeprefix("* ").split(" (")[0]
    if text.startswith("Done"):
        return "Done"
    return re.sub(r"\b\d+ node\(s\)|\b\d+ node\b", "the node(s)", text)


class StartCommand:
    """`kubelite start` in the background, its progress lines timestamped as they come."""

    def __init__(self, cluster: Cluster) -> None:
        self.t0 = time.monotonic()
        self.proc = subprocess.Popen(cluster.start_argv(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     text=True, env=cluster.env, cwd=REPO)
        self.lines: list[tuple[float, str]] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append((time.monotonic() - self.t0, line.rstrip()))

    def wait(self) -> float:
        """Seconds from spawn to exit; BenchError with the output when it fails."""
        try:
            code = self.proc.wait(timeout=STEP_TIMEOUT * 2)
        except subprocess.TimeoutExpired:
            raise BenchError(f"`kubelite start` did not return within {STEP_TIMEOUT * 2:.0f}s") from None
        took = time.monotonic() - self.t0
        self.reader.join(timeout=5)
        if code != 0:
            raise BenchError(f"`kubelite start` failed ({code}):\n" + "\n".join(text for _, text in self.lines))
        return took

    def steps(self) -> dict[str, float]:
        """Progress line -> seconds since spawn, keyed as `step_key` says."""
        return {step_key(text): t for t, text in self.lines if text.startswith("* ")}

    def abort(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@contextlib.contextmanager
def cluster_session(work: Path, nodes: int, label: str) -> Iterator[Cluster]:
    """A cluster's temp dirs and ports; `kubelite delete` and a leftovers check afterwards, whatever
    happened. Ctrl-C or SIGTERM during the delete is held until it is done (the delete runs in its
    own session, so a terminal's Ctrl-C does not cut it short either); a cluster that could not be
    removed keeps its data dir, for `kubelite delete` by hand."""
    root = Path(tempfile.mkdtemp(prefix=f"{label}-", dir=work))
    (root / "home").mkdir()
    cluster = Cluster(root, nodes=nodes)
    failed = True
    try:
        yield cluster
        failed = False
    finally:
        held: list[int] = []
        previous = {sig: signal.signal(sig, lambda signum, _: held.append(signum))
                    for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            began = time.monotonic()
            deleted = cluster.delete()
            cluster.delete_seconds = time.monotonic() - began
            left = leftovers(root, SHAPE)
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        problem = "" if deleted.returncode == 0 else f"`kubelite delete` failed:\n{deleted.stdout}{deleted.stderr}"
        problem += "" if not left else "left on the machine after `kubelite delete`:\n  " + "\n  ".join(left)
        if problem:
            problem += f"\nkept {root}; retry with `kubelite delete --data-dir {cluster.data}`"
        else:
            shutil.rmtree(root, ignore_errors=True)
        if problem and failed:
            print(f"error: {problem}", file=sys.stderr)
        elif problem:
            raise BenchError(problem)
        elif held and not failed:
            raise KeyboardInterrupt
