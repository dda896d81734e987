"""Cluster DNS throughput: queries/s for cluster names, measured against a real `DnsServer`.

    python -m kubelite.dns.bench [--services 1000] [--seconds 3] [--window 32]

The server runs in this process on 127.0.0.1 (an index filled with `--services` ClusterIP Services
and one headless Service with 10 endpoints; no API server, so only DNS is measured). Load comes
from a second process (this module with --client) that keeps `--window` UDP queries in flight,
the wire built once with dnspython and only the ID changed. Also printed: the cost of one
`DnsServer.handle` call without sockets, from the rendered-answer cache and with the cache emptied
first (parse, resolve, render: a question asked for the first time since the cluster changed),
and the round trip of one `dns.asyncquery.udp` at a time from the server's own process.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import subprocess
import sys
import time

import dns.asyncquery
import dns.message

from kubelite.dns.index import ClusterIndex
from kubelite.dns.server import DnsServer

NAMES = {"service": "svc-7.bench.svc.cluster.local.", "headless": "db.bench.svc.cluster.local."}


def fill(index: ClusterIndex, services: int) -> None:
    for n in range(services):
        ip = f"198.19.{1 + n // 250}.{1 + n % 250}"
        index.put_service({"metadata": {"name": f"svc-{n}", "namespace": "bench"},
                           "spec": {"clusterIP": ip, "clusterIPs": [ip], "ports": [{"name": "http", "port": 80}]}})
    index.put_service({"metadata": {"name": "db", "namespace": "bench"},
                       "spec": {"clusterIP": "None", "ports": [{"name": "pg", "port": 5432}]}})
    index.put_slice({"metadata": {"name": "db-1", "namespace": "bench",
                                  "labels": {"kubernetes.io/service-name": "db"}},
                     "addressType": "IPv4", "ports": [{"name": "pg", "port": 5432, "protocol": "TCP"}],
                     "endpoints": [{"addresses": [f"198.18.0.{n}"], "conditions": {"ready": True}}
                                   for n in range(1, 11)]})


def client(port: int, name: str, seconds: float, window: int) -> dict[str, float]:
    """Blocking load generator: `window` queries in flight, a lost one re-sent after 100 ms."""
    wire = bytearray(dns.message.make_query(name, "A").to_wire())
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.connect(("127.0.0.1", port))
    sock.settimeout(0.1)
    next_id, answered, resent = 0, 0, 0

    def send() -> None:
        nonlocal next_id
        next_id = (next_id + 1) & 0xFFFF
        wire[0:2] = next_id.to_bytes(2, "big")
        sock.send(wire)

    for _ in range(window):
        send()
    started = time.perf_counter()
    deadline = started + seconds
    while time.perf_counter() < deadline:
        try:
            sock.recv(4096)
            answered += 1
        except TimeoutError:
            resent += 1
        send()
    elapsed = time.perf_counter() - started
    sock.close()
    return {"qps": answered / elapsed, "answered": answered, "resent": resent}


async def serve_and_measure(args: argparse.Namespace) -> dict[str, object]:
    index = ClusterIndex()
    fill(index, args.services)
    server = DnsServer(None, listen=[("127.0.0.1", 0)], index=index, upstreams=[])
    await server.start()
    port = server.addresses[0][1]
    results: dict[str, object] = {"services": args.services, "window": args.window}
    try:
        for label, name in NAMES.items():
            wire = dns.message.make_query(name, "A").to_wire()
            n, started = 20_000, time.perf_counter()
            for _ in range(n):
                server.handle(wire, udp=True)
            results[f"{label}_handle_us"] = round((time.perf_counter() - started) / n * 1e6, 1)
            n, started = 2_000, time.perf_counter()
            for _ in range(n):
                server.answers.clear()  # as after every change in the cluster
                server.handle(wire, udp=True)
            results[f"{label}_handle_uncached_us"] = round((time.perf_counter() - started) / n * 1e6, 1)
            command = [sys.executable, "-m", "kubelite.dns.bench", "--client", str(port), "--name", name,
                       "--seconds", str(args.seconds), "--window", str(args.window)]
            process = await asyncio.create_subprocess_exec(*command, stdout=subprocess.PIPE)
            out, _ = await process.communicate()
            results[f"{label}_udp"] = json.loads(out)
        query, rounds = dns.message.make_query(NAMES["service"], "A"), 2000
        started = time.perf_counter()
        for _ in range(rounds):
            await dns.asyncquery.udp(query, "127.0.0.1", port=port, timeout=2)
        results["asyncquery_sequential_qps"] = round(rounds / (time.perf_counter() - started))
    finally:
        await server.stop()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--services", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--window", type=int, default=32)
    parser.add_argument("--client", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--name", default=NAMES["service"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.client:
        print(json.dumps(client(args.client, args.name, args.seconds, args.window)))
        return
    print(json.dumps(asyncio.run(serve_and_measure(args)), indent=2))


if __name__ == "__main__":
    main()
