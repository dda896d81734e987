"""Time to Kubernetes: `kubelite start` of a 1-node and a 3-node runc cluster, after minikube's
time-to-k8s benchmark, and the idle memory of the whole cluster. Root only.

    sudo python bench/start.py [--runs 3] [--nodes 1,3] [--idle 10]

Phases, each timed from the moment `kubelite start` is spawned (upstream's are the same steps,
run one after the other; it also times `get svc kubernetes` and `get svc kube-dns`, which our server
has before it answers at all):
1. command returned: `kubelite start` exited 0 (nodes Ready, the cluster DNS answering);
2. API server answering: the first 200 from /readyz, polled from a thread while the command runs;
3. app running: one `kubectl apply` of a Deployment of the offline test httpd image and a NodePort
   Service for it (upstream applies one manifest too), then the first HTTP 200 through the NodePort
   on the first node's address;
4. DNS answering: `kubectl exec deploy/web -- nslookup kubernetes.default.svc.cluster.local`
   until it answers with the `kubernetes` Service's ClusterIP. This is the total.
The pods use imagePullPolicy IfNotPresent: the default for a `:latest` tag (Always) would try
Docker Hub first, which this bench must not contact (the image is in the node's store already).

Each node count gets one untimed warm-up start first (upstream's dry run), used for the memory
figure: 10 s idle with no workloads, then RSS and PSS of the server, the agents and any conmon/runc.
Then `--runs` timed starts; the median of each phase is reported. Every cluster is made with its own
shape (name klb, bridge klb0, its own ranges, free ports, a temp data dir and $HOME) so it runs
beside a user's cluster, is removed with `kubelite delete` after each run (also on failure or
Ctrl-C), and the machine is checked for leftovers (`bench/start_cluster.py`). Floors measured in
the same run are printed as ratios so figures from noisy machines compare (`bench/start_probes.py`);
the tables are Markdown for docs/performance.md (`bench/start_report.py`).
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.start_cluster import (  # noqa: E402
    FIRST_NODE_IP,
    KUBERNETES_SERVICE_IP,
    REPO,
    STEP_TIMEOUT,
    BenchError,
    Cluster,
    ReadyzPoller,
    StartCommand,
    cluster_session,
)
from bench.start_probes import Floors, cluster_processes, cpu_seconds, daemon_pids, measure_floors  # noqa: E402
from bench.start_report import Idle, Timing, memory_table, phase_table, ratio_lines, steps_table  # noqa: E402
from kubelite.images.testimages import HTTPD_REF  # noqa: E402
from tests.e2e.local_fixtures import host_problems, http_get  # noqa: E402
from tests.support import wait_for  # noqa: E402


def app_manifest() -> str:
    """What `kubectl create deployment web --image=<httpd>` + `kubectl expose deployment web --port 80
    --type NodePort` make, as one List, with imagePullPolicy IfNotPresent (see the module doc)."""
    labels = {"app": "web"}
    container = {"name": "httpd", "image": HTTPD_REF, "imagePullPolicy": "IfNotPresent"}
    deployment = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "labels": labels},
                  "spec": {"replicas": 1, "selector": {"matchLabels": labels},
                           "template": {"metadata": {"labels": labels}, "spec": {"containers": [container]}}}}
    service = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "labels": labels},
               "spec": {"type": "NodePort", "selector": labels, "ports": [{"port": 80, "targetPort": 80}]}}
    return json.dumps({"apiVersion": "v1", "kind": "List", "items": [deployment, service]})


def run_app(cluster: Cluster) -> int:
    """Apply the app; its NodePort."""
    items = json.loads(cluster.kubectl("apply", "-f", "-", "-o", "json", stdin=app_manifest()))["items"]
    return int(next(i for i in items if i["kind"] == "Service")["spec"]["ports"][0]["nodePort"])


def answers_http(port: int) -> bool:
    with contextlib.suppress(OSError, http.client.HTTPException):
        return bool(http_get(FIRST_NODE_IP, port, timeout=1.0))
    return False


def dns_answered(output: str) -> bool:
    """Whether busybox nslookup's output gives the `kubernetes` Service's ClusterIP for its name
    (not merely the server's own `Address: <ip>:53` line)."""
    name = re.escape("kubernetes.default.svc.cluster.local")
    return re.search(rf"^Name:\s+{name}\s*\nAddress:\s+{re.escape(KUBERNETES_SERVICE_IP)}\s*$", output,
                     re.MULTILINE) is not None


def dns_answers(cluster: Cluster) -> bool:
    return dns_answered(cluster.kubectl("exec", "deploy/web", "--", "nslookup", "kubernetes.default.svc.cluster.local",
                                        check=False, timeout=STEP_TIMEOUT))


def timed_run(cluster: Cluster) -> Timing:
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = StartCommand(cluster)
    poller = ReadyzPoller(cluster.port, start.t0)
    poller.start()
    try:
        timing = Timing(command=start.wait())
    finally:
        poller.stop.set()
        start.abort()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    own_cpu = after.ru_utime + after.ru_stime - children.ru_utime - children.ru_stime
    if poller.answered is None:
        raise BenchError("/readyz never answered 200 while `kubelite start` ran")
    timing.api, timing.steps = poller.answered, start.steps()
    node_port = run_app(cluster)
    wait_for(lambda: answers_http(node_port), timeout=STEP_TIMEOUT, interval=0.02,
             what=f"HTTP 200 from {FIRST_NODE_IP}:{node_port}")
    timing.app = time.monotonic() - start.t0
    wait_for(lambda: dns_answers(cluster), timeout=STEP_TIMEOUT, interval=0.1, what="nslookup in the pod")
    timing.dns = time.monotonic() - start.t0
    timing.cpu = own_cpu + cpu_seconds(list(daemon_pids(cluster.data)))
    return timing


def idle_memory(cluster: Cluster, *, idle: float) -> Idle:
    """The warm-up start: started, `idle` seconds with no workloads, then its processes' memory
    and the CPU they used meanwhile (leases, status updates, resyncs)."""
    start = StartCommand(cluster)
    try:
        start.wait()
    finally:
        start.abort()
    before = cluster_processes(cluster.data)
    cpu = cpu_seconds([p.pid for p in before])
    time.sleep(idle)
    after = cluster_processes(cluster.data)
    used = cpu_seconds([p.pid for p in after]) - cpu
    return Idle(procs=after, cpu_percent=100 * used / idle)


# ----- main ---------------------------------------------------------------------------------------

def wait_for_other_e2e(max_wait: float) -> None:
    """Another session's e2e tests on the same 2 cores would skew the figures: wait for them."""
    deadline, said = time.monotonic() + max_wait, 0.0
    while True:
        found = subprocess.run(["pgrep", "-f", "pytest.*e2e"], capture_output=True, text=True, check=False)
        pids = [p for p in found.stdout.split() if int(p) != os.getpid()]
        if not pids:
            return
        if time.monotonic() > deadline:
            raise BenchError(f"e2e tests still running (PIDs {', '.join(pids)}) after {max_wait:.0f}s: run the "
                             "bench when they end, or pass --no-wait to measure anyway")
        if time.monotonic() - said > 30:
            print(f"waiting for e2e tests to end (PIDs {', '.join(pids)}) so they do not skew the figures...",
                  flush=True)
            said = time.monotonic()
        time.sleep(2)


def bench(work: Path, counts: list[int], *, runs: int, idle: float) -> tuple[dict[int, list[Timing]],
                                                                             dict[int, Idle], Floors]:
    print("floors: runc run, python start, CLI import...", flush=True)
    measured = measure_floors(work / "floors", REPO)
    results: dict[int, list[Timing]] = {}
    memory: dict[int, Idle] = {}
    for n in counts:
        print(f"{n} node(s): warm-up start, then {idle:.0f}s idle for the memory figure", flush=True)
        with cluster_session(work, n, f"warmup{n}") as cluster:
            memory[n] = idle_memory(cluster, idle=idle)
        results[n] = []
        for i in range(runs):
            with cluster_session(work, n, f"run{n}-{i}") as cluster:
                timing = timed_run(cluster)
            timing.delete = cluster.delete_seconds
            results[n].append(timing)
            print(f"  run {i + 1}/{runs}: command {timing.command:.2f}s, API {timing.api:.2f}s, "
                  f"app {timing.app:.2f}s, DNS {timing.dns:.2f}s; delete took {timing.delete:.2f}s", flush=True)
    return results, memory, measured


def report(results: dict[int, list[Timing]], memory: dict[int, Idle], floors: Floors, *,
           idle: float, runs: int) -> None:
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=REPO,
                            check=False).stdout.strip() or "unknown"
    print(f"\n### time-to-k8s, median of {runs} runs ({time.strftime('%Y-%m-%d %H:%M')}, commit {commit})\n")
    for lines in (phase_table(results), steps_table(results), ratio_lines(results, floors),
                  memory_table(memory, idle=idle)):
        print("\n".join(lines) + "\n")


@contextlib.contextmanager
def work_dir() -> Iterator[Path]:
    """A temp dir for the floors and the clusters; kept if a cluster in it could not be removed."""
    work = Path(tempfile.mkdtemp(prefix="klb-bench-"))
    try:
        yield work
    finally:
        shutil.rmtree(work / "floors", ignore_errors=True)
        with contextlib.suppress(OSError):
            work.rmdir()


def node_counts(text: str) -> list[int]:
    try:
        counts = [int(x) for x in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"--nodes takes counts like 1,3, not {text!r}") from None
    if not counts or any(not 1 <= n <= 9 for n in counts):
        raise argparse.ArgumentTypeError("--nodes: each count from 1 to 9")
    return counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=3, help="timed starts per node count (default 3)")
    parser.add_argument("--nodes", type=node_counts, default=[1, 3], help="node counts (default 1,3)")
    parser.add_argument("--idle", type=float, default=10.0, help="idle seconds before reading memory (default 10)")
    parser.add_argument("--no-wait", action="store_true", help="do not wait for other e2e tests to end")
    parser.add_argument("--max-wait", type=float, default=900.0, help="longest wait for them (default 900 s)")
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    problems = host_problems()
    if problems:
        print(f"error: this bench starts runc clusters and needs: {', '.join(problems)}", file=sys.stderr)
        return 2

    def terminate(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt  # cleans up as Ctrl-C does

    signal.signal(signal.SIGTERM, terminate)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even when started with SIGINT ignored (`&`)
    try:
        if not args.no_wait:
            wait_for_other_e2e(args.max_wait)
        began, load_before = time.monotonic(), os.getloadavg()[0]
        with work_dir() as work:
            results, memory, floors = bench(work, args.nodes, runs=args.runs, idle=args.idle)
    except KeyboardInterrupt:
        print("\ninterrupted: the cluster in progress was deleted", file=sys.stderr)
        return 130
    except (BenchError, AssertionError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    report(results, memory, floors, idle=args.idle, runs=args.runs)
    print(f"bench took {time.monotonic() - began:.0f}s; 1-minute load average {load_before:.1f} before, "
          f"{os.getloadavg()[0]:.1f} after (2 cores: other work on the machine skews the figures)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
