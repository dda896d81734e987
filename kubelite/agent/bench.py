"""Hollow node benchmark: N hollow nodes in this process against a real kubelite server process on
the same machine (TLS, SQLite, nodeipam + nodelifecycle controllers, no scheduler).

    python -m kubelite.agent.bench --count 1000 [--window 60] [--settle 30] [--no-events]

Prints: the time until all N nodes are registered and Ready; the CPU both processes spent on it;
the oldest lease seen while they registered (it must stay well under the 40 s grace period);
then, after `--settle` seconds, the steady-state CPU of this process and of the server over
`--window` seconds, and both RSS figures. The server gets `--mask` (node_cidr_mask_size) so
every node can have a podCIDR (/26 for 1,000 nodes, /29 for 5,000).
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
                                       node_cidr_mask_size=int(sys.argv[4]), scheduler=False, leader_elect=False)))
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
    server = subprocess.Popen([sys.executable, "-c", SERVER, str(data), str(port), args.controllers, str(args.mask)])
    kubeconfig = data / "admin.kubeconfig"
    for _ in range(300):
        if kubeconfig.exists():
            break
        await asyncio.sleep(0.1)
    await asyncio.sleep(1.0)
    return server, kubeconfig


async def main(args: argparse.Namespace) -> None:
    from kubelite.agent.config import KubeletConfig
    from kubelite.agent.hollow import HollowNodes
    from kubelite.client import Client, Connection

    server, kubeconfig = await start_server(args)
    try:
        client = Client(Connection.from_kubeconfig(kubeconfig), max_connections=64)
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
        print(f"{args.count} hollow nodes registered and Ready in {took:.1f}s; CPU meanwhile: hollow process "
              f"{time.process_time() - cpu0:.1f}s, server {cpu_seconds(server.pid) - server0:.1f}s", flush=True)
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
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--window", type=float, default=60.0, help="steady-state measurement, seconds")
    parser.add_argument("--settle", type=float, default=30.0, help="wait after registration, seconds")
    parser.add_argument("--controllers", default="nodeipam,nodelifecycle")
    parser.add_argument("--mask", type=int, default=26, help="node_cidr_mask_size for the server")
    parser.add_argument("--no-events", action="store_true", help="kubelets record no Events")
    asyncio.run(main(parser.parse_args()))
