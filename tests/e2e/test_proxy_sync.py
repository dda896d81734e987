"""NftBackend's incremental syncs against the kernel (root): after every change, the table it keeps
holds what a full replace of the same Services would, except the chains it emptied and left for a
later delete (backends.py), which must be empty and, once a later update lists the table's chains,
gone. Everything lives in one private network namespace, klps-sync; the reference table beside it
(`klps-ref`) is the same desired ruleset loaded whole."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import Iterator
from typing import Any

import pytest

from kubelite.proxy.backends import NftBackend
from kubelite.proxy.model import NodeContext, assemble, service_fragment
from kubelite.proxy.nft import render_full
from kubelite.proxy.serviceports import Endpoint, ServicePort
from tests.e2e.proxy_fixtures import in_ns, require_host, sh

NS, TABLE, REFERENCE = "klps-sync", "klps-proxy", "klps-ref"
CTX = NodeContext("node-a", node_ips=("198.19.242.129",), cluster_cidr="198.18.242.0/24")
Services = dict[str, list[ServicePort]]


def services(count: int) -> Services:
    return {f"e2e/s{i}": [ServicePort("e2e", f"s{i}", "http", "tcp", f"198.19.242.{i + 1}", 80, node_port=31000 + i,
                                      endpoints=tuple(Endpoint(f"198.18.242.{2 * i + j + 2}", 8080, "node-a")
                                                      for j in range(2)))] for i in range(count)}


def fewer_endpoints(svcs: Services, key: str) -> None:
    [sp] = svcs[key]
    svcs[key] = [dataclasses.replace(sp, endpoints=sp.endpoints[:1])]


def content(table: str) -> dict[str, Any]:
    """Chains (their rules) and sets/maps (their elements) of a table, without handles."""
    listing = json.loads(in_ns(NS, "nft", "-j", "list", "table", "ip", table).stdout)["nftables"]
    out: dict[str, Any] = {}
    for item in listing:
        kind = next(iter(item))
        body = item[kind]
        if kind == "chain":
            out.setdefault(f"chain {body['name']}", [])
        elif kind == "rule":
            out.setdefault(f"chain {body['chain']}", []).append(json.dumps(body["expr"], sort_keys=True))
        elif kind in ("set", "map"):
            out[f"{kind} {body['name']}"] = sorted(json.dumps(e, sort_keys=True) for e in body.get("elem") or [])
    return out


class Synced:
    def __init__(self) -> None:
        self.backend = NftBackend(netns=NS, table=TABLE)

    def sync(self, svcs: Services, dirty: set[str] | None) -> dict[str, Any]:
        """Sync, load the same Services whole as the reference, return what only the kept table holds."""
        asyncio.run(self.backend.sync(svcs, ctx=CTX, dirty=dirty))
        whole = assemble([service_fragment(ports, CTX) for ports in svcs.values()], CTX)
        reference = render_full(whole, table=REFERENCE, service_cidr=CTX.service_cidr)
        sh("ip", "netns", "exec", NS, "nft", "-f", "-", input=reference)
        kept, full = content(TABLE), content(REFERENCE)
        assert {k: v for k, v in kept.items() if k in full} == full
        return {k: v for k, v in kept.items() if k not in full}


@pytest.fixture
def synced() -> Iterator[Synced]:
    require_host()
    sh("ip", "netns", "del", NS, check=False)
    sh("ip", "netns", "add", NS)
    try:
        yield Synced()
    finally:
        sh("ip", "netns", "del", NS)  # takes both tables with it


def test_incremental_syncs_keep_the_table_equal_to_a_full_replace(synced: Synced) -> None:
    svcs = services(20)
    assert synced.sync(svcs, None) == {} and synced.backend.stats.mode == "full"

    fewer_endpoints(svcs, "e2e/s3")
    extra = synced.sync(svcs, {"e2e/s3"})
    assert synced.backend.stats.mode == "incremental"
    assert list(extra.values()) == [[]] and next(iter(extra)).startswith("chain endpoint-")  # emptied, kept

    svcs["e2e/s3"] = services(20)["e2e/s3"]  # the endpoint comes back: its chain is refilled
    assert synced.sync(svcs, {"e2e/s3"}) == {} and synced.backend.stats.stale_chains == 0

    fewer_endpoints(svcs, "e2e/s4")
    assert len(synced.sync(svcs, {"e2e/s4"})) == 1
    del svcs["e2e/s5"]  # map elements change: nft lists the chains, the waiting one is deleted too
    assert synced.sync(svcs, {"e2e/s5"}) == {} and synced.backend.stats.stale_chains == 0
    assert "e2e/s5/" not in in_ns(NS, "nft", "list", "table", "ip", TABLE).stdout

    asyncio.run(synced.backend.cleanup())
    assert TABLE not in in_ns(NS, "nft", "list", "tables").stdout
