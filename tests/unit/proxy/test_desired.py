"""The incremental whole ruleset (desired.py), the cheap update forms (nft.py) and the NftBackend's
deferred chain deletes, without root: the kernel checks run in a private user+network namespace
(test_nft_render.py's `_private_nft`), the backend against a recording stand-in for nft."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

import pytest
from test_nft_render import CTX, _private_nft, _scenarios, many, web

from kubelite.proxy.backends import STALE_CHAINS_MAX, NftBackend
from kubelite.proxy.desired import Desired
from kubelite.proxy.model import SERVICE_IPS, Ruleset, assemble, goto, service_fragment
from kubelite.proxy.nft import NftError, loads_chain_list, render_full, render_purge, render_update
from kubelite.proxy.serviceports import ServicePort


def by_service(ports: list[ServicePort]) -> dict[str, list[ServicePort]]:
    out: dict[str, list[ServicePort]] = {}
    for sp in ports:
        out.setdefault(f"{sp.namespace}/{sp.name}", []).append(sp)
    return out


def fragments(services: dict[str, list[ServicePort]]) -> dict[str, Ruleset | None]:
    return {k: service_fragment(v, CTX) for k, v in services.items()}


# ----- Desired ------------------------------------------------------------------------------------------

def test_put_keeps_the_whole_ruleset_equal_to_assembling_every_fragment() -> None:
    services = by_service(many(30))
    desired = Desired(CTX)
    desired.put(fragments(services))
    steps: list[dict[str, list[ServicePort] | None]] = [
        {"ns/svc-3": by_service(web(1, name="svc-3", ip="198.19.0.4"))["ns/svc-3"]},  # one endpoint fewer
        {"ns/svc-4": None, "ns/svc-5": None},  # deleted
        {"ns/new": by_service(web(3, name="new", ip="198.19.9.9"))["ns/new"]},  # added
        {"ns/svc-6": by_service(web(0, name="svc-6", ip="198.19.0.7"))["ns/svc-6"]},  # no endpoints left
    ]
    for step in steps:
        old_whole = assemble([service_fragment(v, CTX) for v in services.values()], CTX)
        for key, ports in step.items():
            if ports is None:
                del services[key]
            else:
                services[key] = ports
        before, after = desired.put({k: service_fragment(v, CTX) if v else None for k, v in step.items()})
        new_whole = assemble([service_fragment(v, CTX) for v in services.values()], CTX)
        assert desired.ruleset == new_whole
        # the touched entries carry the whole difference
        assert render_update(before, after) == render_update(old_whole, new_whole) != ""


def test_a_map_key_claimed_twice_goes_to_the_smallest_service_key_in_any_order() -> None:
    a, b = Ruleset(), Ruleset()
    a.maps[SERVICE_IPS][("198.19.5.5", "tcp", 80)] = goto("service-a")
    b.maps[SERVICE_IPS][("198.19.5.5", "tcp", 80)] = goto("service-b")
    for order in (["ns/a", "ns/b"], ["ns/b", "ns/a"]):
        desired = Desired(CTX)
        for key in order:
            desired.put({key: a if key == "ns/a" else b})
        assert desired.ruleset.maps[SERVICE_IPS] == {("198.19.5.5", "tcp", 80): goto("service-a")}
    before, after = desired.put({"ns/a": None})
    assert after.maps[SERVICE_IPS] == {("198.19.5.5", "tcp", 80): goto("service-b")}
    assert before.maps[SERVICE_IPS] == {("198.19.5.5", "tcp", 80): goto("service-a")}
    desired.put({"ns/b": None})
    assert desired.ruleset.maps[SERVICE_IPS] == {}


def test_the_node_addresses_stay_when_services_come_and_go() -> None:
    desired = Desired(CTX)
    desired.put(fragments(by_service(web())))
    desired.put({"ns/web": None})
    assert desired.ruleset.sets["nodeport-ips"] == set(CTX.node_ips)
    assert desired.ruleset.chains == {} and desired.fragments.keys() == {""}


# ----- cheap forms in the kernel ------------------------------------------------------------------------------

@pytest.mark.parametrize("index", range(len(_scenarios())))
def test_cheap_update_then_purge_leaves_the_same_table_as_a_full_replace(index: int) -> None:
    old, new = _scenarios()[index]
    cheap = render_update(old, new, cheap=True)
    gone = old.chains.keys() - new.chains.keys()
    assert "delete chain" not in cheap
    expected = _private_nft(render_full(new, service_cidr=CTX.service_cidr))
    deferred = _private_nft(render_full(old, service_cidr=CTX.service_cidr), cheap or "\n")
    assert {name for name in deferred["chain"]} == expected["chain"].keys() | gone
    assert all(name not in deferred["rule"] for name in gone)  # left empty
    purged = _private_nft(render_full(old, service_cidr=CTX.service_cidr), (cheap or "\n") + render_purge(gone))
    assert purged == expected


def test_an_endpoint_change_uses_only_forms_that_skip_the_chain_listing() -> None:
    old, new = build_pair(web(2), web(1))
    script = render_update(old, new, cheap=True)
    assert not loads_chain_list(script)
    assert [line.split()[:2] for line in script.splitlines()] == [["flush", "chain"]] * 2 + [["add", "chain"]]
    # a new Service needs map elements: nft lists the chains whatever the form
    old, new = build_pair(web(2), web(2) + web(2, name="b", ip="198.19.0.11"))
    assert loads_chain_list(render_update(old, new, cheap=True))
    # chains naming an affinity set are filled rule by rule (nft resolves the set from the listing)
    old, new = build_pair(web(2, sessionAffinity="ClientIP"), web(1, sessionAffinity="ClientIP"))
    assert loads_chain_list(render_update(old, new, cheap=True))


def build_pair(old: list[ServicePort], new: list[ServicePort]) -> tuple[Ruleset, Ruleset]:
    return assemble([service_fragment(old, CTX)], CTX), assemble([service_fragment(new, CTX)], CTX)


# ----- the backend's deferred deletes ------------------------------------------------------------------------

class RecordingNft:
    def __init__(self) -> None:
        self.scripts: list[str] = []
        self.fail_next: Exception | None = None

    async def run(self, script: str, *args: str) -> float:
        if self.fail_next:
            exc, self.fail_next = self.fail_next, None
            raise exc
        self.scripts.append(script)
        return 0.0


def backend_with(services: dict[str, list[ServicePort]]) -> tuple[NftBackend, RecordingNft]:
    backend = NftBackend(table="t")
    nft = RecordingNft()
    backend.nft = nft  # type: ignore[assignment]
    asyncio.run(backend.sync(services, ctx=CTX, dirty=None))
    return backend, nft


def one_endpoint_less(services: dict[str, list[ServicePort]], key: str) -> None:
    [sp] = services[key]
    services[key] = [dataclasses.replace(sp, endpoints=sp.endpoints[:-1])]


def test_removed_chains_wait_for_an_update_that_lists_chains_anyway() -> None:
    services = by_service(many(10))
    backend, nft = backend_with(services)
    assert backend.stats.mode == "full"
    for key in ("ns/svc-1", "ns/svc-2"):
        one_endpoint_less(services, key)
        asyncio.run(backend.sync(services, ctx=CTX, dirty={key}))
        assert backend.stats.mode == "incremental" and "delete chain" not in nft.scripts[-1]
    assert backend.stats.stale_chains == 2
    del services["ns/svc-3"]  # map elements go: nft lists the chains, so the deletes ride along
    asyncio.run(backend.sync(services, ctx=CTX, dirty={"ns/svc-3"}))
    deleted = [line for line in nft.scripts[-1].splitlines() if line.startswith("delete chain")]
    assert len(deleted) == 2 + 4 and backend.stats.stale_chains == 0  # the 2 waiting + svc-3's 4 (NodePort)


def test_waiting_chains_are_bounded() -> None:
    services = by_service(many(STALE_CHAINS_MAX + 1))
    backend, nft = backend_with(services)
    for i in range(STALE_CHAINS_MAX):
        key = f"ns/svc-{i}"
        one_endpoint_less(services, key)
        asyncio.run(backend.sync(services, ctx=CTX, dirty={key}))
    assert backend.stats.stale_chains == 0
    assert sum(line.startswith("delete chain") for line in nft.scripts[-1].splitlines()) == STALE_CHAINS_MAX


def test_a_chain_that_comes_back_is_refilled_not_deleted() -> None:
    services = by_service(many(3))
    original = dict(services)
    backend, nft = backend_with(services)
    one_endpoint_less(services, "ns/svc-1")
    asyncio.run(backend.sync(services, ctx=CTX, dirty={"ns/svc-1"}))
    asyncio.run(backend.sync(original, ctx=CTX, dirty={"ns/svc-1"}))
    assert backend.stats.stale_chains == 0 and "delete chain" not in nft.scripts[-1]
    assert sum(line.startswith("add chain ip t endpoint-") for line in nft.scripts[-1].splitlines()) == 2


def test_a_failed_update_replaces_the_whole_table_and_forgets_waiting_chains() -> None:
    services = by_service(many(5))
    backend, nft = backend_with(services)
    one_endpoint_less(services, "ns/svc-1")
    asyncio.run(backend.sync(services, ctx=CTX, dirty={"ns/svc-1"}))
    one_endpoint_less(services, "ns/svc-2")
    nft.fail_next = NftError("Error: Could not process rule: No such file or directory")
    asyncio.run(backend.sync(services, ctx=CTX, dirty={"ns/svc-2"}))
    assert backend.stats.mode == "full" and backend.stats.stale_chains == 0
    whole = assemble([service_fragment(v, CTX) for v in services.values()], CTX)
    assert nft.scripts[-1] == render_full(whole, table="t", service_cidr=CTX.service_cidr)


def test_an_update_that_never_finished_is_followed_by_a_full_replace() -> None:
    services = by_service(many(5))
    backend, nft = backend_with(services)
    one_endpoint_less(services, "ns/svc-1")
    nft.fail_next = FileNotFoundError("nft")  # or a cancel: the table may hold either state
    with pytest.raises(FileNotFoundError):
        asyncio.run(backend.sync(services, ctx=CTX, dirty={"ns/svc-1"}))
    one_endpoint_less(services, "ns/svc-2")
    asyncio.run(backend.sync(services, ctx=CTX, dirty={"ns/svc-2"}))
    whole = assemble([service_fragment(v, CTX) for v in services.values()], CTX)
    assert backend.stats.mode == "full"
    assert nft.scripts[-1] == render_full(whole, table="t", service_cidr=CTX.service_cidr)


def test_nothing_to_do_runs_nothing() -> None:
    services: dict[str, Any] = by_service(many(3))
    backend, nft = backend_with(services)
    asyncio.run(backend.sync(services, ctx=CTX, dirty={"ns/svc-0"}))
    assert backend.stats.mode == "noop" and len(nft.scripts) == 1
