"""Service proxy benchmark (root): traffic through a ClusterIP beside the same traffic straight to
the pod addresses, and rule-sync time at 100 / 1,000 / 5,000 Services beside the most compact nft
table that does the same job, all in one run.

    sudo python bench/proxy.py [--requests 3000] [--concurrency 16] [--rounds 2] [--no-proxier]

1. Wire (bench/proxy_wire.py): a node network namespace with a bridge, two pod namespaces running
   busybox httpd, and the rules for one ClusterIP Service over both pods applied by `NftBackend`
   (kubelite.proxy, table `klbp-proxy`). Each measured run starts a fresh client namespace on the
   bridge (no TIME_WAIT left over from the previous run) and a bounded asyncio load generator in it:
   N requests, C at a time, one connection each (httpd closes after every answer). Direct runs
   alternate between the two pod addresses, so both targets have the same two servers behind them.
   Reports req/s and p50/p99 latency at concurrency 1 (path latency) and C (throughput).
2. Sync (bench/proxy_sync.py): in a private namespace, N ClusterIP Services of 2 endpoints each
   through `NftBackend.sync` (model, render, `nft -f`), full then one endpoint change in N
   (incremental). Baseline: the same Services as the most compact equivalent table (one
   `typeof ip daddr . tcp dport . numgen random mod 2` DNAT map of 2N elements and one rule),
   loaded whole and changed by one element, with `nft -f` in the same namespace.
3. Proxier: the same 5,000 Services and EndpointSlices in an in-process API server, a `Proxier`
   syncing them into a private namespace: time to the first sync, and per EndpointSlice update its
   sync time split into Python and nft.

Everything is named klbp-*, addresses in 198.18.241.0/24 (pods and clients), 198.19.241.0/24 (the
Service) and 198.19.160.0/19 (synthetic Services, only inside private namespaces). Processes are
stopped by PID and namespaces deleted on exit, Ctrl-C and SIGTERM included.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.proxy_wire import REQUEST_TIMEOUT, Result, WireNet, wire_runs  # noqa: E402

TOOLS = ("ip", "nft", "busybox", "sysctl")


def percentile(samples: list[float], p: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p))] if ordered else 0.0


# ----- the load generator (runs inside a client namespace, as a child process) ----------------------

async def load(targets: list[str], *, count: int, concurrency: int, port: int = 80) -> Result:
    """`count` HTTP/1.0 GETs, `concurrency` at a time, target i % len(targets); each its own
    connection, read to EOF. Latency: connect started → answer read."""
    request = b"GET / HTTP/1.0\r\nHost: bench\r\n\r\n"
    latencies: list[float] = []
    errors: list[str] = []
    issued = 0

    async def one(ip: str) -> None:
        started = time.perf_counter()
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_connection(ip, port), REQUEST_TIMEOUT)
            writer.write(request)
            answer = await asyncio.wait_for(reader.read(-1), REQUEST_TIMEOUT)
            writer.close()
        except OSError as exc:  # TimeoutError included
            errors.append(type(exc).__name__)
            return
        if answer[:16].split(b" ")[1:2] != [b"200"]:
            errors.append(f"answer {answer[:16]!r}")
            return
        latencies.append(time.perf_counter() - started)

    async def worker() -> None:
        nonlocal issued
        while issued < count:
            issued += 1
            await one(targets[issued % len(targets)])

    for i in range(20):  # warm up: ARP, routes, conntrack, httpd's first fork
        await one(targets[i % len(targets)])
    latencies.clear()
    errors.clear()
    began, cpu = time.perf_counter(), time.process_time()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return {"seconds": time.perf_counter() - began, "cpu": time.process_time() - cpu, "latencies": latencies,
            "errors": errors}


def load_child(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="proxy.py --load")
    parser.add_argument("targets", nargs="+")
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--concurrency", type=int, required=True)
    args = parser.parse_args(argv)
    result = asyncio.run(load(args.targets, count=args.count, concurrency=args.concurrency))
    print(json.dumps(result))
    return 0


# ----- report ------------------------------------------------------------------------------------------

def wire_report(results: dict[tuple[str, int], list[Result]]) -> None:
    print("\nwire: pod -> ClusterIP vs pod -> pod address (busybox httpd, 1 connection per request)")
    print(f"{'':28} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7} {'client CPU':>10}"
          "   ratio to direct (req/s, p50)")
    for concurrency in sorted({c for _, c in results}):
        rows = {}
        for target in ("direct", "clusterip"):
            runs = results[(target, concurrency)]
            lat = [x for r in runs for x in r["latencies"]]
            seconds = sum(r["seconds"] for r in runs)
            errors = sum(len(r["errors"]) for r in runs)
            cpu = sum(r["cpu"] for r in runs) / seconds if seconds else 0.0
            rows[target] = (len(lat) / seconds if seconds else 0.0, percentile(lat, .5), percentile(lat, .99), errors,
                            cpu)
        for target, (rate, p50, p99, errors, cpu) in rows.items():
            line = (f"{target + f' (c={concurrency})':28} {rate:8.0f} {p50 * 1e3:8.2f} {p99 * 1e3:8.2f} {errors:7}"
                    f" {cpu:9.0%}")
            if target == "clusterip":
                direct = rows["direct"]
                line += f"   {rate / direct[0]:.2f} x, {p50 / direct[1]:.2f} x"
            print(line, flush=True)


# ----- main -----------------------------------------------------------------------------------------------

def preflight() -> str | None:
    if os.geteuid() != 0:
        return "bench/proxy.py needs root (network namespaces, nftables): run it with sudo"
    missing = [t for t in TOOLS if shutil.which(t) is None]
    if missing:
        return f"missing {', '.join(missing)}: apt-get install iproute2 nftables busybox-static procps"
    return None


def _interrupt(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


def main() -> int:
    if sys.argv[1:2] == ["--load"]:
        return load_child(sys.argv[2:])
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=3000, help="requests per measured run (default 3000)")
    parser.add_argument("--concurrency", type=int, default=16, help="the throughput runs' concurrency (default 16)")
    parser.add_argument("--rounds", type=int, default=2, help="runs per target and concurrency (default 2)")
    parser.add_argument("--services", default="100,1000,5000", help="Service counts for the sync figures")
    parser.add_argument("--no-wire", action="store_true", help="skip the traffic figures")
    parser.add_argument("--no-proxier", action="store_true", help="skip the Proxier + API server figures")
    args = parser.parse_args()
    problem = preflight()
    if problem:
        print(problem, file=sys.stderr)
        return 2
    try:
        counts = [int(n) for n in args.services.split(",")]
    except ValueError:
        print(f"--services wants numbers like 100,1000,5000, not {args.services!r}", file=sys.stderr)
        return 2
    if not 1 <= args.requests <= 100_000 or not 1 <= args.concurrency <= 256 or not 1 <= args.rounds <= 10:
        print("bounds: --requests 1..100000, --concurrency 1..256, --rounds 1..10", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, _interrupt)  # SIGTERM unwinds like Ctrl-C, through every finally below
    from bench.proxy_sync import proxier_bench, sync_bench

    began = time.perf_counter()
    try:
        if not args.no_wire:
            with WireNet() as net:
                wire_report(wire_runs(net, script=Path(__file__).resolve(), requests=args.requests,
                                      concurrency=args.concurrency, rounds=args.rounds))
        sync_bench(counts)
        if not args.no_proxier:
            proxier_bench(max(counts))
    except KeyboardInterrupt:
        print("\ninterrupted; cleaned up", file=sys.stderr)
        return 130
    print(f"\nwhole bench: {time.perf_counter() - began:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
