"""Scheduler benchmark: pods/s scheduled over thousands of hollow nodes, beside baselines measured
in the same run on the same in-process API server, so the ratio shows the scheduler's own cost.

    python bench/scheduler.py [--pods 10000] [--nodes 1000,5000] [--concurrency 32] [--profile out.prof]

For each node count: a fresh in-process API server (SQLite, no controllers, no scheduler), N Node
objects created through the client (allocatable + Ready condition; no agents), then three phases
of M pods each, created by `--concurrency` concurrent clients over the internal Unix socket:

1. create only: nobody binds them (raw API pod-create throughput);
2. create + round-robin binder: an informer sees each pod and binds it to the next node, no
   decision at all (what placement costs without a scheduler: informer + binding writes);
3. create + the scheduler: `kubelite.scheduler.Scheduler` with its default profile.

Each rate runs from the first create sent to the last binding observed (through the binder's or
the scheduler's own pod informer). Decision time per pod (filter + score + assume) comes from the
scheduler's stats. Pods request 100m/128Mi and belong to ReplicaSet-like owners of 100 pods, so
resource fit, scoring and spreading all do real work. Everything shares one event loop (and the
two cores with nothing else), as the scheduler shares the server process in `kubelite server`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import logging
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from kubelite.client import Client, Connection, Handlers, Informer  # noqa: E402
from kubelite.client.resources import EVENTS, NAMESPACES, NODES, PODS  # noqa: E402
from kubelite.cluster.config import ServerConfig  # noqa: E402
from kubelite.cluster.server import ServerRuntime  # noqa: E402
from kubelite.scheduler import Scheduler  # noqa: E402

Obj = dict[str, Any]
PODS_PER_OWNER = 100


def percentile(samples: list[float], p: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p))] if ordered else 0.0


def hollow_node(i: int) -> Obj:
    name = f"hollow-{i:05d}"
    resources = {"cpu": "32", "memory": "128Gi", "pods": "110", "ephemeral-storage": "100Gi"}
    return {"apiVersion": "v1", "kind": "Node",
            "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name, "kubernetes.io/os": "linux",
                                                  "topology.kubernetes.io/zone": f"zone-{i % 3}"}},
            "spec": {},
            "status": {"capacity": resources, "allocatable": resources,
                       "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady"}]}}


def bench_pod(i: int, scheduler_name: str) -> Obj:
    owner = f"web-{i // PODS_PER_OWNER:04d}"
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": f"pod-{i:06d}", "labels": {"app": owner},
                         "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": owner,
                                              "uid": f"00000000-0000-0000-0000-{i // PODS_PER_OWNER:012d}",
                                              "controller": True}]},
            "spec": {"schedulerName": scheduler_name,
                     "containers": [{"name": "app", "image": "docker.io/kubelite/pause:3.10",
                                     "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}}}]}}


async def create_all(client: Client, objects: Callable[[int], Obj], count: int, concurrency: int,
                     rt: Any, namespace: str | None = None) -> float:
    """Create `count` objects with `concurrency` workers; returns the time the first was sent."""
    indexes = iter(range(count))
    started = time.perf_counter()

    async def worker() -> None:
        for i in indexes:
            await client.create(rt, objects(i), namespace)

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return started


class BindWatcher:
    """Counts pods that got a node, as a pod informer sees them; `done` fires at `expected`."""

    def __init__(self, expected: int) -> None:
        self.expected, self.bound, self.last = expected, 0, 0.0
        self.done = asyncio.Event()

    def handlers(self) -> Handlers:
        def updated(old: Obj, new: Obj) -> None:
            if new["spec"].get("nodeName") and not old["spec"].get("nodeName"):
                self.bound += 1
                self.last = time.perf_counter()
                if self.bound >= self.expected:
                    self.done.set()
        return Handlers(on_update=updated)


async def phase_create_only(client: Client, args: argparse.Namespace) -> float:
    started = await create_all(client, lambda i: bench_pod(i, "nobody"), args.pods, args.concurrency, PODS,
                               "create-only")
    return args.pods / (time.perf_counter() - started)


async def phase_round_robin(client: Client, args: argparse.Namespace, node_names: list[str]) -> float:
    informer = Informer(client, PODS, namespace="round-robin")
    watcher = BindWatcher(args.pods)
    next_node = iter(range(10**9))
    pending: set[asyncio.Task[Any]] = set()

    def added(pod: Obj) -> None:
        name = pod["metadata"]["name"]
        binding = {"apiVersion": "v1", "kind": "Binding", "metadata": {"name": name},
                   "target": {"kind": "Node", "name": node_names[next(next_node) % len(node_names)]}}
        task = asyncio.create_task(client.create(PODS, binding, "round-robin", name=name, subresource="binding"))
        pending.add(task)
        task.add_done_callback(pending.discard)

    informer.add_handlers(Handlers(on_add=added))
    informer.add_handlers(watcher.handlers())
    task = asyncio.create_task(informer.run())
    await informer.wait_synced()
    try:
        started = await create_all(client, lambda i: bench_pod(i, "round-robin"), args.pods, args.concurrency,
                                   PODS, "round-robin")
        await asyncio.wait_for(watcher.done.wait(), args.timeout)
        return args.pods / (watcher.last - started)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def scheduled_events(client: Client) -> int:
    events = await client.list(EVENTS, "scheduled")
    return sum(1 for e in events["items"] if e.get("reason") == "Scheduled")


async def phase_scheduler(client: Client, args: argparse.Namespace) -> tuple[float, float, Scheduler]:
    scheduler = Scheduler(client)
    task = asyncio.create_task(scheduler.run())
    while not (scheduler.pod_informer.synced.is_set() and scheduler.node_informer.synced.is_set()):
        await asyncio.sleep(0.05)
    watcher = BindWatcher(args.pods)
    scheduler.pod_informer.add_handlers(watcher.handlers())
    profiler = cProfile.Profile() if args.profile else None
    try:
        if profiler:
            profiler.enable()
        started = await create_all(client, lambda i: bench_pod(i, "default-scheduler"), args.pods,
                                   args.concurrency, PODS, "scheduled")
        await asyncio.wait_for(watcher.done.wait(), args.timeout)
        return args.pods / (watcher.last - started), watcher.last - started, scheduler
    finally:
        if profiler:
            profiler.disable()
            profiler.dump_stats(args.profile)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def run_size(nodes: int, args: argparse.Namespace) -> None:
    data_dir = Path(tempfile.mkdtemp(prefix="kubelite-bench-sched-"))
    config = ServerConfig(data_dir=data_dir, port=0, tls=False, controllers="", scheduler=False,
                          leader_elect=False, bind_address="127.0.0.1")
    runtime = ServerRuntime(config)
    await runtime.start()
    assert runtime.socket_path is not None
    client = Client(Connection.unix(runtime.socket_path), max_connections=args.concurrency + 32)
    try:
        for ns in ("create-only", "round-robin", "scheduled"):
            await client.create(NAMESPACES, {"metadata": {"name": ns}})
        t = time.perf_counter()
        await create_all(client, hollow_node, nodes, args.concurrency, NODES)
        node_rate = nodes / (time.perf_counter() - t)
        names = [hollow_node(i)["metadata"]["name"] for i in range(nodes)]
        print(f"\n== {args.pods} pods over {nodes} nodes  (nodes created at {node_rate:.0f}/s)", flush=True)
        create_rate = await phase_create_only(client, args)
        print(f"create only (API baseline)            {create_rate:8.0f} pods/s", flush=True)
        rr_rate = await phase_round_robin(client, args, names)
        print(f"create + round-robin bind (baseline)  {rr_rate:8.0f} pods/s   "
              f"= {rr_rate / create_rate:4.2f} x create only", flush=True)
        rate, elapsed, scheduler = await phase_scheduler(client, args)
        decisions = list(scheduler.stats.decision_seconds)
        events = await scheduled_events(client)
        print(f"create + scheduler                    {rate:8.0f} pods/s   = {rate / rr_rate:4.2f} x round-robin"
              f"   = {rate / create_rate:4.2f} x create only", flush=True)
        print(f"decision time per pod                 p50 {percentile(decisions, .5) * 1e3:6.2f} ms   "
              f"p99 {percentile(decisions, .99) * 1e3:6.2f} ms   (attempts {scheduler.stats.attempts}, "
              f"unschedulable {scheduler.stats.unschedulable}, bind errors {scheduler.stats.bind_errors})",
              flush=True)
        print(f"where the time went                   decisions {sum(decisions):5.1f} s of {elapsed:5.1f} s; "
              f"API writes per pod: round-robin 2 (create, binding), scheduler 3 (+ Scheduled event; "
              f"{events} of {args.pods} written by the last binding)", flush=True)
    finally:
        await client.close()
        await runtime.stop()
        shutil.rmtree(data_dir, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pods", type=int, default=10_000)
    parser.add_argument("--nodes", default="1000,5000", help="comma-separated node counts, one run each")
    parser.add_argument("--concurrency", type=int, default=32, help="concurrent pod creators")
    parser.add_argument("--timeout", type=float, default=600, help="seconds to wait for the last binding")
    parser.add_argument("--profile", default="", help="write a cProfile of the scheduler phase here")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    for nodes in (int(n) for n in args.nodes.split(",") if n.strip()):
        asyncio.run(run_size(nodes, args))


if __name__ == "__main__":
    main()
