"""The rule-sync half of bench/proxy.py: kubelite's NftBackend and Proxier at 100 / 1,000 / 5,000
Services, beside the most compact nft table for the same Services, in the same run.

Every table lives in a private namespace (klbp-sync, klbp-proxier), so nothing here touches the
host's ruleset. The synthetic Services are ClusterIP, port 80, two endpoints each on port 8080.

The baseline (`floor_full`, `floor_change`): the same Services as one DNAT map keyed by
`ip daddr . tcp dport . numgen random mod 2` (2 elements per Service) and one rule. It is the least
nftables can load and still balance every ClusterIP over its two endpoints; what it lacks is what
kube-proxy's shape adds (per-endpoint chains for hairpin masquerade and session affinity, reject
for Services without endpoints, NodePorts, externalTrafficPolicy). Its one-endpoint change is one
element deleted and one added: nft's own minimum per change, process start included.
"""

from __future__ import annotations

import asyncio
import dataclasses
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.proxy_wire import sh
from kubelite.proxy.backends import ApplyStats, NftBackend
from kubelite.proxy.model import NodeContext
from kubelite.proxy.nft import Nft, render_delete
from kubelite.proxy.serviceports import Endpoint, ServicePort

SYNC_NS, PROXIER_NS = "klbp-sync", "klbp-proxier"
CTX = NodeContext("bench-node", node_ips=("198.19.241.129",), cluster_cidr="198.18.0.0/16")
CHANGES = 5  # endpoint changes measured per size (median reported)
Services = dict[str, list[ServicePort]]


def vip(i: int) -> str:
    return f"198.19.{160 + i // 250}.{i % 250 + 1}"  # 198.19.160.0/19: room for 8,000


def pod_ip(i: int, j: int) -> str:
    n = 2 * i + j
    return f"198.18.{n // 250 % 240}.{n % 250 + 2}"


def synthetic(count: int) -> Services:
    return {f"bench/svc-{i}": [ServicePort("bench", f"svc-{i}", "http", "tcp", vip(i), 80, endpoints=tuple(
        Endpoint(pod_ip(i, j), 8080, "bench-node") for j in range(2)))] for i in range(count)}


# ----- the baseline table ---------------------------------------------------------------------------

def _floor_elements(sp: ServicePort) -> list[str]:
    return [f"{sp.cluster_ip} . {sp.port} . {k} : {ep.ip} . {ep.port}" for k, ep in enumerate(sp.endpoints)]


def floor_full(services: Services, table: str) -> str:
    elements = ", ".join(e for ports in services.values() for sp in ports for e in _floor_elements(sp))
    return (f"table ip {table}\ndelete table ip {table}\ntable ip {table} {{\n"
            "  map svc { typeof ip daddr . tcp dport . numgen random mod 2 : ip daddr . tcp dport; "
            f"elements = {{ {elements} }} }}\n"
            "  chain pre { type nat hook prerouting priority -100; policy accept; "
            "meta l4proto tcp dnat ip addr . port to ip daddr . tcp dport . numgen random mod 2 map @svc; }\n}\n")


def floor_change(old: ServicePort, new: ServicePort, table: str) -> str:
    """One endpoint replaced: its element deleted and the new one added, one transaction."""
    gone, added = _floor_elements(old)[-1], _floor_elements(new)[-1]
    return (f"delete element ip {table} svc {{ {gone.split(' : ')[0]} }}\n"
            f"add element ip {table} svc {{ {added} }}\n")


# ----- NftBackend at N Services ------------------------------------------------------------------------

@dataclasses.dataclass
class SyncFigures:
    count: int
    full: ApplyStats
    removed: list[ApplyStats]  # one endpoint removed from one Service
    restored: list[ApplyStats]  # and put back
    new_service: ApplyStats  # one Service added (map elements: nft loads the table's chain list)
    floor_full: float
    floor_change: list[float]


async def measure(count: int) -> SyncFigures:
    backend = NftBackend(netns=SYNC_NS, table="klbp-sync")
    services = synthetic(count)
    await backend.sync(services, ctx=CTX, dirty=None)
    full = dataclasses.replace(backend.stats)
    removed, restored = [], []
    for k in range(CHANGES):
        key = f"bench/svc-{(k * 7919) % count}"
        [sp] = services[key]
        services[key] = [dataclasses.replace(sp, endpoints=sp.endpoints[:1])]
        await backend.sync(services, ctx=CTX, dirty={key})
        removed.append(dataclasses.replace(backend.stats))
        services[key] = [sp]
        await backend.sync(services, ctx=CTX, dirty={key})
        restored.append(dataclasses.replace(backend.stats))
    services["bench/new"] = synthetic(count + 1)[f"bench/svc-{count}"]
    await backend.sync(services, ctx=CTX, dirty={"bench/new"})
    new_service = dataclasses.replace(backend.stats)
    await backend.cleanup()

    nft, table = Nft(netns=SYNC_NS), "klbp-floor"
    floor = await nft.run(floor_full(synthetic(count), table))
    changes = []
    for k in range(CHANGES):
        [sp] = services[f"bench/svc-{(k * 7919) % count}"]
        other = dataclasses.replace(sp, endpoints=(sp.endpoints[0], Endpoint("198.18.250.250", 8080)))
        changes.append(await nft.run(floor_change(sp, other, table)))
        await nft.run(floor_change(other, sp, table))
    await nft.run(render_delete(table=table))
    return SyncFigures(count, full, removed, restored, new_service, floor, changes)


def _ms(seconds: float) -> str:
    return f"{seconds * 1e3:7.1f}"


def _median_stats(runs: list[ApplyStats]) -> tuple[float, float]:
    return statistics.median(s.total_seconds for s in runs), statistics.median(s.nft_seconds for s in runs)


def sync_report(rows: list[SyncFigures]) -> None:
    print("\nrule sync through NftBackend (ms; python = model + render, nft = the `nft -f` process)")
    print(f"{'services':>8} | {'full':>7} {'python':>7} {'nft':>7} {'floor':>7} {'ratio':>6} {'us/svc':>6} |"
          f" {'1 ep change':>11} {'nft':>7} {'floor':>7} {'ratio':>6} {'bytes':>6} | {'add back':>8} {'new svc':>8}")
    for r in rows:
        total, nft = r.full.total_seconds, r.full.nft_seconds
        change_total, change_nft = _median_stats(r.removed)
        back_total, _ = _median_stats(r.restored)
        floor_change = statistics.median(r.floor_change)
        print(f"{r.count:8} | {_ms(total)} {_ms(total - nft)} {_ms(nft)} {_ms(r.floor_full)} {total / r.floor_full:6.2f}"
              f" {total / r.count * 1e6:6.0f} | {_ms(change_total):>11} {_ms(change_nft)} {_ms(floor_change)}"
              f" {change_total / floor_change:6.2f} {r.removed[0].script_bytes:6} |"
              f" {_ms(back_total):>8} {_ms(r.new_service.total_seconds):>8}", flush=True)


def sync_bench(counts: list[int]) -> None:
    sh("ip", "netns", "del", SYNC_NS, check=False)
    sh("ip", "netns", "add", SYNC_NS)
    try:
        rows = []
        for count in counts:
            print(f"sync: {count} Services ...", flush=True)
            rows.append(asyncio.run(measure(count)))
    finally:
        sh("ip", "netns", "del", SYNC_NS, check=False)
    sync_report(rows)


# ----- the Proxier against an in-process API server -------------------------------------------------------

def _service(i: int) -> dict[str, Any]:
    # an explicit clusterIP (clear of the range's low band): the server's dynamic allocation lists
    # every allocated address per create, so 5,000 dynamic creates take minutes
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": f"svc-{i}", "namespace": "default"},
            "spec": {"type": "ClusterIP", "clusterIP": vip(i + 20),
                     "ports": [{"name": "http", "port": 80, "targetPort": 8080}]}}


def _slice(i: int, endpoints: int = 2) -> dict[str, Any]:
    return {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "addressType": "IPv4",
            "metadata": {"name": f"svc-{i}-1", "namespace": "default",
                         "labels": {"kubernetes.io/service-name": f"svc-{i}"}},
            "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
            "endpoints": [{"addresses": [pod_ip(i, j)], "conditions": {"ready": True}, "nodeName": "bench-node"}
                          for j in range(endpoints)]}


async def _create_all(client: Any, count: int) -> dict[int, dict[str, Any]]:
    from kubelite.client.resources import ENDPOINTSLICES, SERVICES

    slices: dict[int, dict[str, Any]] = {}
    gate = asyncio.Semaphore(32)

    async def one(i: int) -> None:
        async with gate:
            await client.create(SERVICES, _service(i), namespace="default")
            slices[i] = await client.create(ENDPOINTSLICES, _slice(i), namespace="default")
    await asyncio.gather(*(one(i) for i in range(count)))
    return slices


async def _update_slice(client: Any, current: dict[str, Any], i: int, endpoints: int) -> dict[str, Any]:
    from kubelite.client.resources import ENDPOINTSLICES

    body = _slice(i, endpoints)
    body["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
    updated: dict[str, Any] = await client.update(ENDPOINTSLICES, body)
    return updated


def _wait_sync(proxier: Any, after: int, timeout: float = 30) -> float:
    deadline = time.perf_counter() + timeout
    while proxier.sync_count <= after:
        if time.perf_counter() > deadline:
            raise RuntimeError("the Proxier did not sync within 30 s")
        time.sleep(0.001)
    return time.perf_counter()


def proxier_bench(count: int) -> None:
    from kubelite.client import Client, Connection
    from kubelite.proxy.proxier import Proxier
    from tests.integration.conftest import ServerThread

    sh("ip", "netns", "del", PROXIER_NS, check=False)
    sh("ip", "netns", "add", PROXIER_NS)
    with tempfile.TemporaryDirectory(prefix="klbp-server-") as tmp:
        srv = ServerThread(Path(tmp), service_cidr="198.19.160.0/19").start()
        client = Client(Connection.unix(str(srv.runtime.socket_path)))
        backend = NftBackend(netns=PROXIER_NS, table="klbp-proxier")
        proxier = Proxier(client, node_name="bench-node", node_ips=["198.19.241.129"], cluster_cidr="198.18.0.0/16",
                          backend=backend)
        try:
            print(f"proxier: creating {count} Services and EndpointSlices in an in-process API server ...", flush=True)
            began = time.perf_counter()
            slices = srv.call(_create_all(client, count), timeout=600)
            print(f"proxier: created in {time.perf_counter() - began:.1f} s; starting the Proxier", flush=True)
            began = time.perf_counter()
            srv.call(_start(proxier))
            first = time.perf_counter() - began
            full = (proxier.last_sync_seconds, backend.stats.nft_seconds)
            changes = []
            for k in range(CHANGES):
                i = (k * 7919) % count
                for endpoints in (1, 2):
                    time.sleep(proxier.min_sync_interval * 1.5)  # measure the path, not the debounce
                    before, sent = proxier.sync_count, time.perf_counter()
                    slices[i] = srv.call(_update_slice(client, slices[i], i, endpoints))
                    done = _wait_sync(proxier, before)
                    changes.append((done - sent, proxier.last_sync_seconds, backend.stats.nft_seconds))
        finally:
            srv.call(proxier.stop())
            srv.call(client.close())
            srv.stop()
            sh("ip", "netns", "del", PROXIER_NS, check=False)
    _proxier_report(count, first, full, changes)


async def _start(proxier: Any) -> None:
    proxier.start()
    await asyncio.wait_for(proxier.synced.wait(), 120)


def _proxier_report(count: int, first: float, full: tuple[float, float],
                    changes: list[tuple[float, float, float]]) -> None:
    print(f"\nProxier at {count} Services (in-process API server, informers, NftBackend)")
    print(f"  start -> first sync done: {first:.2f} s (lists and watches included); "
          f"the sync itself {full[0]:.2f} s = python {full[0] - full[1]:.2f} s + nft {full[1]:.2f} s")
    e2e = statistics.median(c[0] for c in changes)
    sync = statistics.median(c[1] for c in changes)
    nft = statistics.median(c[2] for c in changes)
    print(f"  one EndpointSlice update (median of {len(changes)}): update sent -> synced {e2e * 1e3:.1f} ms; "
          f"the sync {sync * 1e3:.1f} ms = python {(sync - nft) * 1e3:.1f} ms + nft {nft * 1e3:.1f} ms", flush=True)
