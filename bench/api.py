"""API benchmark: create / get / list / watch through HTTPS against a real `kubelite server`
process, beside the raw store and raw SQLite measured in the same run (ratios, because these
machines are noisy).

    python bench/api.py [--clients 16] [--objects 2000]

Every figure is printed next to its baseline; paste the output into docs/performance.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sqlite3
import ssl
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from kubelite.store.sqlite import SqliteStore  # noqa: E402

NS = "bench"


def percentile(samples: list[float], p: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p))] if ordered else 0.0


def report(name: str, count: int, seconds: float, latencies: list[float], baseline: float | None = None,
           baseline_name: str = "") -> float:
    rate = count / seconds
    line = (f"{name:<34} {rate:>9.0f} ops/s   p50 {percentile(latencies, .5) * 1e3:6.2f} ms"
            f"   p99 {percentile(latencies, .99) * 1e3:6.2f} ms")
    if baseline:
        line += f"   = {rate / baseline:5.2f} x {baseline_name} ({baseline:.0f} ops/s)"
    print(line, flush=True)
    return rate


# ----- baselines ---------------------------------------------------------------------------------

def raw_sqlite_inserts(path: Path, count: int) -> tuple[float, list[float]]:
    """One INSERT + COMMIT per write, WAL + synchronous=FULL: what durability costs on this disk."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("CREATE TABLE kv (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT, value BLOB)")
    value = b"x" * 400
    latencies = []
    start = time.perf_counter()
    for i in range(count):
        t = time.perf_counter()
        conn.execute("BEGIN")
        conn.execute("INSERT INTO kv (name, value) VALUES (?, ?)", (f"/k/{i}", value))
        conn.execute("COMMIT")
        latencies.append(time.perf_counter() - t)
    elapsed = time.perf_counter() - start
    conn.close()
    return elapsed, latencies


async def raw_store_creates(path: Path, count: int, clients: int) -> tuple[float, list[float]]:
    store = SqliteStore(str(path))
    value = b"x" * 400
    latencies: list[float] = []

    async def worker(w: int) -> None:
        for i in range(w, count, clients):
            t = time.perf_counter()
            await store.create(f"/registry/configmaps/{NS}/c{i}", value)
            latencies.append(time.perf_counter() - t)

    start = time.perf_counter()
    await asyncio.gather(*(worker(w) for w in range(clients)))
    elapsed = time.perf_counter() - start
    await store.close()
    return elapsed, latencies


# ----- the API server ----------------------------------------------------------------------------

class Server:
    def __init__(self, data_dir: Path, port: int) -> None:
        self.data_dir, self.port = data_dir, port
        log = (data_dir / "server.log").open("ab")
        self.proc = subprocess.Popen([sys.executable, "-m", "kubelite.cli.main", "server", "--data-dir",
                                      str(data_dir), "--port", str(port), "--log-level", "warning",
                                      "--controllers=", "--no-scheduler", "--no-dns"],
                                     stdout=log, stderr=subprocess.STDOUT)

    def ssl_context(self) -> ssl.SSLContext:
        pki = self.data_dir / "pki"
        context = ssl.create_default_context(cafile=str(pki / "ca.crt"))
        context.load_cert_chain(str(pki / "admin.crt"), str(pki / "admin.key"))
        return context

    async def wait_ready(self, session: aiohttp.ClientSession) -> None:
        for _ in range(300):
            try:
                async with session.get(f"https://127.0.0.1:{self.port}/readyz") as r:
                    if r.status == 200:
                        return
            except (aiohttp.ClientError, OSError):
                pass
            await asyncio.sleep(0.1)
        raise RuntimeError("server did not become ready: " + (self.data_dir / "server.log").read_text())

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            self.proc.wait(10)


async def api_benchmarks(server: Server, count: int, clients: int, store_rate: float) -> None:
    base = f"https://127.0.0.1:{server.port}/api/v1/namespaces/{NS}/configmaps"
    while not (server.data_dir / "pki" / "admin.crt").exists():
        await asyncio.sleep(0.05)
    connector = aiohttp.TCPConnector(ssl=server.ssl_context(), limit=clients + 4)
    async with aiohttp.ClientSession(connector=connector) as session:
        await server.wait_ready(session)
        async with session.post(f"https://127.0.0.1:{server.port}/api/v1/namespaces",
                                json={"metadata": {"name": NS}}) as r:
            assert r.status == 201, await r.text()
        sent_at: dict[str, float] = {}
        watch_task = asyncio.create_task(watch_events(session, base, count, sent_at))
        await asyncio.sleep(0.3)
        rate = await timed_workers(session, "POST", base, count, clients, lambda i: {
            "metadata": {"name": f"c{i}", "labels": {"bench": "yes"}}, "data": {"v": "x" * 380}},
            sent_at=sent_at)
        report(f"API create ({clients} clients)", count, *rate, baseline=store_rate, baseline_name="raw store")
        received, watch_seconds, lags = await watch_task
        report("API watch events (create sent -> event)", received, watch_seconds, lags)
        get_rate = await timed_workers(session, "GET", base, count, clients, None, by_name=True)
        report(f"API get ({clients} clients)", count, *get_rate)
        lists = max(10, count // 200)
        list_rate = await timed_workers(session, "GET", base + "?limit=500", lists, min(clients, 4), None)
        report(f"API list (500 of {count} objects)", lists, *list_rate)


async def timed_workers(session: aiohttp.ClientSession, method: str, url: str, count: int, clients: int,
                        body: Any, *, by_name: bool = False,
                        sent_at: dict[str, float] | None = None) -> tuple[float, list[float]]:
    latencies: list[float] = []

    async def worker(w: int) -> None:
        for i in range(w, count, clients):
            target = f"{url}/c{i}" if by_name else url
            payload = body(i) if callable(body) else None
            t = time.perf_counter()
            if sent_at is not None:
                sent_at[f"c{i}"] = t
            async with session.request(method, target, json=payload) as r:
                await r.read()
                assert r.status in (200, 201), r.status
            latencies.append(time.perf_counter() - t)

    start = time.perf_counter()
    await asyncio.gather(*(worker(w) for w in range(clients)))
    return time.perf_counter() - start, latencies


async def watch_events(session: aiohttp.ClientSession, url: str, expected: int,
                       sent_at: dict[str, float]) -> tuple[int, float, list[float]]:
    """Count ADDED events; latency is from the moment the create request was sent to the moment its
    event arrived on the watch (same process, same clock)."""
    received, first, lags = 0, 0.0, []
    async with session.get(url + "?watch=true&timeoutSeconds=120") as r:
        async for line in r.content:
            event = json.loads(line)
            if event["type"] != "ADDED":
                continue
            now = time.perf_counter()
            first = first or now
            lags.append(now - sent_at[event["object"]["metadata"]["name"]])
            received += 1
            if received == expected:
                return received, max(now - first, 1e-6), lags
    return received, max(time.perf_counter() - first, 1e-6), lags


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--objects", type=int, default=2000)
    parser.add_argument("--port", type=int, default=16443)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="kubelite-bench-") as tmp:
        work = Path(tmp)
        seconds, lat = raw_sqlite_inserts(work / "raw.db", args.objects)
        sqlite_rate = report("raw SQLite INSERT+COMMIT (1 writer)", args.objects, seconds, lat)
        seconds, lat = asyncio.run(raw_store_creates(work / "store.db", args.objects, args.clients))
        store_rate = report(f"raw store create ({args.clients} clients)", args.objects, seconds, lat,
                            baseline=sqlite_rate, baseline_name="raw SQLite")
        (work / "server").mkdir()
        server = Server(work / "server", args.port)
        try:
            asyncio.run(api_benchmarks(server, args.objects, args.clients, store_rate))
        finally:
            server.stop()


if __name__ == "__main__":
    main()
