"""Cluster scale benchmark: N hollow nodes in this process against a real kubelite server process
on the same machine (TLS, SQLite, every controller and the scheduler), then a Deployment of P
replicas run to completion on them (KWOK's measurement: time to N Ready nodes, time to P Running
pods).

    python bench/cluster_scale.py --count 5000 --pods 10000 [--window 30] [--settle 10] [--no-events]

Baselines measured in the same run, against the same server: creating N bare Node objects and P
bare Pod objects straight through the API (no kubelets, no controllers acting on them), so each
figure prints as a ratio to the API's own write throughput. Also printed: the CPU both processes
spent, the oldest lease seen while nodes registered (it must stay well under the 40 s grace
period), the steady-state CPU and RSS. The server gets `--mask` (node_cidr_mask_size) so every node
can have a podCIDR (/26 for 1,000 nodes, /29 for 5,000).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

SERVER = """
import asyncio, logging, sys
from pathlib import Path
logging.basicConfig(level=logging.ERROR)
from kubelite.cluster.config import ServerConfig
from kubelite.cluster.server import serve_forever
asyncio.run(serve_forever(ServerConfig(data_dir=Path(sys.argv[1]), port=int(sys.argv[2]), controllers=sys.argv[3],
                                       node_cidr_mask_size=int(sys.argv[4]), scheduler=sys.argv[5] == "1",
                                       leader_elect=False, dns=False)))
"""


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


async def oldest_lease(client: Any) -> float:
    from kubelite.client.resources import LEASES

    leases = (await client.list(LEASES, "kube-node-lease"))["items"]
    now = time.time()
    return max((now - datetime.fromisoformat(lease["spec"]["renewTime"].replace("Z", "+00:00")).timestamp()
                for lease in leases), default=0.0)


async def ready_count(client: Any) -> int:
    from kubelite.client.resources import NODES

    nodes = (await client.list(NODES))["items"]
    return sum(1 for n in nodes for c in n["status"].get("conditions", []) if c["type"] == "Ready"
               and c["status"] == "True")


async def start_server(args: argparse.Namespace) -> tuple[subprocess.Popen[bytes], Path]:
    data = Path(tempfile.mkdtemp(prefix="hollow-bench-"))
    port = 20000 + os.getpid() % 20000
    server = subprocess.Popen([sys.executable, "-c", SERVER, str(data), str(port), args.controllers, str(args.mask),
                               "1" if args.pods else "0"])
    kubeconfig = data / "admin.kubeconfig"
    for _ in range(300):
        if kubeconfig.exists():
            break
        await asyncio.sleep(0.1)
    await asyncio.sleep(1.0)
    return server, kubeconfig


async def create_many(client: Any, rt: Any, objects: list[dict], namespace: str | None,
                      concurrency: int = 32) -> float:
    """Create `objects` with `concurrency` writers; seconds taken (the API write baseline)."""
    began = time.monotonic()

    async def writer(w: int) -> None:
        for obj in objects[w::concurrency]:
            await client.create(rt, obj, namespace)

    await asyncio.gather(*(writer(w) for w in range(concurrency)))
    return time.monotonic() - began


async def api_baselines(client: Any, args: argparse.Namespace) -> tuple[float, float]:
    """Bare Node and Pod objects written straight through the API (nothing acts on them), then
    removed: the same number of writes the measured phases cause at the least."""
    from kubelite.client.resources import NAMESPACES, NODES, PODS

    nodes = [{"metadata": {"name": f"baseline-{i}", "labels": {"bench": "baseline"}}} for i in range(args.count)]
    node_seconds = await create_many(client, NODES, nodes, None)
    await client.create(NAMESPACES, {"metadata": {"name": "baseline"}})
    pods = [{"metadata": {"name": f"p{i}"}, "spec": {"schedulerName": "none",
             "containers": [{"name": "c", "image": "x"}]}} for i in range(args.pods)]
    pod_seconds = await create_many(client, PODS, pods, "baseline") if args.pods else 0.0
    for i in range(args.count):
        await client.delete(NODES, f"baseline-{i}")
    await client.delete(NAMESPACES, "baseline")
    return node_seconds, pod_seconds


async def run_deployment(client: Any, replicas: int) -> float:
    """Seconds from creating a Deployment of `replicas` to all its pods Running."""
    from kubelite.client.resources import DEPLOYMENTS, PODS

    labels = {"app": "scale"}
    deployment = {"metadata": {"name": "scale"}, "spec": {
        "replicas": replicas, "selector": {"matchLabels": labels},
        "template": {"metadata": {"labels": labels}, "spec": {"containers": [{"name": "c", "image": "scale:1"}]}}}}
    began = time.monotonic()
    await client.create(DEPLOYMENTS, deployment, "default")
    while True:
        pods = (await client.list(PODS, "default", label_selector="app=scale"))["items"]
        running = sum(1 for p in pods if (p.get("status") or {}).get("phase") == "Running")
        if running >= replicas:
            return time.monotonic() - began
        if os.environ.get("BENCH_VERBOSE"):
            bound = sum(1 for p in pods if (p.get("spec") or {}).get("nodeName"))
            print(f"  {time.monotonic() - began:5.1f}s created {len(pods)} bound {bound} running {running}",
                  flush=True)
        await asyncio.sleep(1.0)


async def main(args: argparse.Namespace) -> None:
    from kubelite.agent.config import KubeletConfig
    from kubelite.agent.hollow import HollowNodes
    from kubelite.client import Client, Connection

    server, kubeconfig = await start_server(args)
    try:
        client = Client(Connection.from_kubeconfig(kubeconfig), max_connections=64)
        node_base, pod_base = await api_baselines(client, args)
        print(f"baseline: {args.count} bare Node creates {node_base:.1f}s "
              f"({args.count / node_base:.0f}/s); {args.pods} bare Pod creates {pod_base:.1f}s", flush=True)
        nodes = HollowNodes(client, args.count, config=KubeletConfig(record_events=not args.no_events))
        cpu0, server0, began = time.process_time(), cpu_seconds(server.pid), time.monotonic()
        ages: list[float] = []

        async def sample_leases() -> None:
            while True:
                await asyncio.sleep(2)
                ages.append(await oldest_lease(client))

        sampler = asyncio.create_task(sample_leases())
        await nodes.start()
        while await ready_count(client) < args.count:
            await asyncio.sleep(0.2)
        took = time.monotonic() - began
        print(f"{args.count} hollow nodes registered and Ready in {took:.1f}s = {took / node_base:.1f} x the bare "
              f"Node creates; CPU meanwhile: hollow process {time.process_time() - cpu0:.1f}s, server "
              f"{cpu_seconds(server.pid) - server0:.1f}s", flush=True)
        if args.pods:
            pods_took = await run_deployment(client, args.pods)
            print(f"Deployment of {args.pods} replicas all Running in {pods_took:.1f}s = "
                  f"{pods_took / pod_base:.1f} x the bare Pod creates ({args.pods / pods_took:.0f} pods/s)",
                  flush=True)
        await asyncio.sleep(args.settle)
        sampler.cancel()
        print(f"oldest lease while registering and settling: {max(ages, default=0):.1f}s", flush=True)
        wall0, cpu0, server0, beats0 = time.monotonic(), time.process_time(), cpu_seconds(server.pid), \
            nodes.host.wheel.beats
        await asyncio.sleep(args.window)
        wall = time.monotonic() - wall0
        print(f"steady state over {wall:.0f}s: hollow process {100 * (time.process_time() - cpu0) / wall:.1f}% "
              f"of a core, server {100 * (cpu_seconds(server.pid) - server0) / wall:.1f}%; "
              f"{(nodes.host.wheel.beats - beats0) / wall:.0f} lease renewals/s; "
              f"RSS hollow {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB, "
              f"server {rss_mib(server.pid):.0f} MiB; Ready {await ready_count(client)}/{args.count}; "
              f"heartbeat failures {nodes.host.wheel.failures}, skipped {nodes.host.wheel.skipped}", flush=True)
        await nodes.stop()
        await client.close()
    finally:
        server.terminate()
        server.wait(10)


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--window", type=float, default=30.0, help="steady-state measurement, seconds")
    parser.add_argument("--settle", type=float, default=10.0, help="wait after registration, seconds")
    parser.add_argument("--pods", type=int, default=0, help="replicas of a Deployment to run on the nodes")
    parser.add_argument("--controllers", default="*")
    parser.add_argument("--mask", type=int, default=26, help="node_cidr_mask_size for the server")
    parser.add_argument("--no-events", action="store_true", help="kubelets record no Events")
    asyncio.run(main(parser.parse_args()))
