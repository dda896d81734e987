"""Rendering the model as nft scripts: the whole table (atomic replace) and the difference between
two rulesets (incremental). Checked as text, and, where `nft` and unprivileged user namespaces
exist, loaded into a private user+network namespace (`unshare --user --map-root-user --net`,
no root needed): scripts must parse and apply, and full(old) + update(old → new) must leave the
same table as full(new)."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from typing import Any

import pytest
from proxy_objects import endpoint, endpoint_slice, service

from kubelite.proxy.model import Balance, NodeContext, Ruleset, build, endpoint_chain, service_chain
from kubelite.proxy.nft import CHAINED_BALANCE_MAX, render_delete, render_full, render_rule, render_update
from kubelite.proxy.serviceports import ServicePort, service_ports

Obj = dict[str, Any]
CTX = NodeContext("n1", node_ips=("198.19.128.1",), cluster_cidr="198.18.0.0/16", service_cidr="198.19.0.0/17")


def web(n_endpoints: int = 2, *, name: str = "web", ip: str = "198.19.0.10", **spec: Any) -> list[ServicePort]:
    eps = [endpoint(f"198.18.1.{i + 2}", node="n1" if i % 2 == 0 else "n2") for i in range(n_endpoints)]
    spec.setdefault("ports", [{"name": "http", "port": 80, "protocol": "TCP", "nodePort": 30080}])
    return service_ports(service(name, cluster_ip=ip, kind=spec.pop("kind", "NodePort"), **spec),
                         [endpoint_slice(name, eps)])


def many(count: int, *, endpoints: int = 2) -> list[ServicePort]:
    out = []
    for i in range(count):
        out += web(endpoints, name=f"svc-{i}", ip=f"198.19.{i // 250}.{i % 250 + 1}",
                   ports=[{"name": "http", "port": 80, "protocol": "TCP", "nodePort": 30000 + i}])
    return out


# ----- text ------------------------------------------------------------------------------------------

def test_full_script_replaces_the_table_in_one_transaction() -> None:
    script = render_full(build(web(), CTX), table="t")
    lines = script.splitlines()
    assert lines[:3] == ["table ip t", "delete table ip t", "table ip t {"]
    assert lines[-1] == "}"
    assert "type nat hook prerouting priority -100; policy accept;" in script
    assert "type filter hook output priority -90; policy accept;" in script
    assert "masquerade fully-random" in script and "meta mark set meta mark | 0x4000" in script


def test_full_script_renders_every_rule_kind() -> None:
    [sp] = web(kind="LoadBalancer", externalTrafficPolicy="Local", sessionAffinity="ClientIP",
               status={"loadBalancer": {"ingress": [{"ip": "198.19.200.1"}]}})
    script = render_full(build([sp], CTX), service_cidr="198.19.0.0/17")
    ep = endpoint_chain(sp, sp.endpoints[0])
    assert f"198.19.0.10 . tcp . 80 : goto {service_chain(sp)}" in script
    assert "tcp . 30080 : goto external-" in script
    assert "ip daddr 198.19.0.10 tcp dport 80 ip saddr != 198.18.0.0/16 jump mark-for-masquerade" in script
    assert "fib saddr type local jump mark-for-masquerade" in script
    assert f"numgen random mod 2 == 0 goto {ep}\n    goto endpoint-" in script
    assert "update @affinity-" in script and "flags dynamic,timeout; timeout 10800s;" in script
    assert "ip saddr 198.18.1.2 jump mark-for-masquerade" in script
    assert "meta l4proto tcp dnat to 198.18.1.2:8080" in script
    assert "ip daddr 198.19.0.0/17 drop" in script


def test_balance_is_a_chain_of_shrinking_odds_then_a_verdict_map_for_many_endpoints() -> None:
    few = render_rule(Balance(("a", "b", "c")))
    assert few == ["numgen random mod 3 == 0 goto a", "numgen random mod 2 == 0 goto b", "goto c"]
    assert render_rule(Balance(("a",))) == ["goto a"]
    targets = tuple(f"e{i}" for i in range(CHAINED_BALANCE_MAX + 1))
    [many_] = render_rule(Balance(targets))
    assert many_.startswith(f"numgen random mod {len(targets)} vmap {{ 0 : goto e0, 1 : goto e1,")


def test_no_endpoints_renders_reject_with_reset_for_tcp() -> None:
    ports = service_ports(service("empty"), [])
    script = render_full(build(ports, CTX))
    assert "198.19.0.10 . tcp . 80 : goto reject-chain" in script
    assert "meta l4proto tcp reject with tcp reset" in script


def test_update_is_empty_when_nothing_changed() -> None:
    assert render_update(build(web(), CTX), build(web(), CTX)) == ""


def test_update_for_one_removed_endpoint_touches_that_service_only() -> None:
    old_ports, new_ports = web(2), web(1)
    [old_sp], [new_sp] = old_ports, new_ports
    gone = endpoint_chain(old_sp, old_sp.endpoints[1])
    lines = render_update(build(old_ports + many(50), CTX), build(new_ports + many(50), CTX), table="t").splitlines()
    chain = service_chain(new_sp)
    assert lines[0] == f"flush chain ip t {gone}"
    assert lines[1] == f"flush chain ip t {chain}"
    assert lines[2] == f"delete chain ip t {gone}"
    assert all(line.startswith(f"add rule ip t {chain} ") for line in lines[3:])
    assert len(lines) == 5


def test_update_orders_deletes_before_adds() -> None:
    old = build(web(2) + web(1, name="b", ip="198.19.0.11"), CTX)
    new = build(web(1) + web(0, name="b", ip="198.19.0.11") + web(1, name="c", ip="198.19.0.12"), CTX)
    lines = render_update(old, new).splitlines()
    verbs = [" ".join(line.split()[:2]) for line in lines]
    order = ["delete element", "flush chain", "delete chain", "add chain", "add rule", "add element"]
    ranks = [order.index(v) for v in verbs]
    assert ranks == sorted(ranks)
    # a verdict that changes is deleted and re-added in the same transaction
    assert any(line.startswith("delete element ip kubelite-proxy service-ips { 198.19.0.11 . tcp . 80 }")
               for line in lines)
    assert any("no-endpoint-services { 198.19.0.11 . tcp . 80 : goto reject-chain }" in line for line in lines)


def test_changed_affinity_timeout_recreates_the_sets_and_rewrites_their_chains() -> None:
    old = build(web(sessionAffinity="ClientIP"), CTX)
    new = build(web(sessionAffinity="ClientIP", sessionAffinityConfig={"clientIP": {"timeoutSeconds": 30}}), CTX)
    lines = render_update(old, new).splitlines()
    assert sum(line.startswith("delete set") for line in lines) == 2
    assert sum(line.startswith("add set") and "timeout 30s" in line for line in lines) == 2
    flushed = {line.split()[-1] for line in lines if line.startswith("flush chain")}
    assert len(flushed) == 3  # the service chain and both endpoint chains use the sets


def test_update_size_does_not_grow_with_the_number_of_services() -> None:
    base = many(1000)
    changed = list(base)
    changed[500] = web(1, name="svc-500", ip="198.19.2.1",
                       ports=[{"name": "http", "port": 80, "protocol": "TCP", "nodePort": 30500}])[0]
    old, new = build(base, CTX), build(changed, CTX)
    started = time.perf_counter()
    script = render_update(old, new)
    assert time.perf_counter() - started < 1.0
    assert len(script.splitlines()) == 5
    assert len(render_full(new)) > 200 * len(script)


def test_delete_script() -> None:
    assert render_delete(table="t") == "table ip t\ndelete table ip t\n"


# ----- the kernel's opinion, in a private user+network namespace -----------------------------------

def _private_nft(*scripts: str) -> Obj:
    """Apply scripts in order inside a fresh unprivileged user+net namespace; return the table
    as `nft -j` JSON normalised (no handles, elements sorted)."""
    if shutil.which("nft") is None or shutil.which("unshare") is None:
        pytest.skip("nft or unshare missing (CI installs nftables and util-linux)")
    program = "".join(f"nft -f - <<'EOF{i}'\n{s}EOF{i}\n" for i, s in enumerate(scripts)) + "nft -j list ruleset\n"
    proc = subprocess.run(["unshare", "--user", "--map-root-user", "--net", "sh", "-e", "-c", program],
                          capture_output=True, text=True, timeout=60)
    if "unshare failed" in proc.stderr or "Operation not permitted" in proc.stderr and proc.returncode:
        pytest.skip(f"unprivileged user namespaces unavailable: {proc.stderr.strip()}")
    assert proc.returncode == 0, proc.stderr
    return _normalise(json.loads(proc.stdout))


def _normalise(listing: Obj) -> Obj:
    out: Obj = {"chain": {}, "set": {}, "map": {}, "rule": {}}
    for item in listing["nftables"]:
        for kind in ("chain", "set", "map"):
            if kind in item:
                body = {k: v for k, v in item[kind].items() if k != "handle"}
                body["elem"] = sorted(json.dumps(e, sort_keys=True) for e in body.get("elem") or [])
                out[kind][body["name"]] = body
        if "rule" in item:
            out["rule"].setdefault(item["rule"]["chain"], []).append(json.dumps(item["rule"]["expr"], sort_keys=True))
    return out


def _scenarios() -> list[tuple[Ruleset, Ruleset]]:
    lb: dict[str, Any] = {"kind": "LoadBalancer", "status": {"loadBalancer": {"ingress": [{"ip": "198.19.200.1"}]}}}
    return [
        (build(web(2), CTX), build(web(1), CTX)),
        (build(web(2), CTX), build(web(0), CTX)),
        (build(web(0), CTX), build(web(3), CTX)),
        (build(web(2, sessionAffinity="ClientIP"), CTX),
         build(web(3, sessionAffinity="ClientIP", sessionAffinityConfig={"clientIP": {"timeoutSeconds": 5}}), CTX)),
        (build(web(2, **lb), CTX), build(web(2, externalTrafficPolicy="Local", **lb), CTX)),
        (build(many(20), CTX), build(many(10) + web(2, name="z", ip="198.19.9.9"), CTX)),
        (build(web(3), CTX), build(web(CHAINED_BALANCE_MAX + 2), CTX)),
        (build(web(2, name="udp", ports=[{"name": "d", "port": 53, "protocol": "UDP"}]), CTX),
         build(web(2, name="udp", ports=[{"name": "d", "port": 53, "protocol": "UDP"}], sessionAffinity="ClientIP"),
               CTX)),
    ]


@pytest.mark.parametrize("index", range(len(_scenarios())))
def test_incremental_update_leaves_the_same_table_as_a_full_replace(index: int) -> None:
    old, new = _scenarios()[index]
    expected = _private_nft(render_full(new, service_cidr=CTX.service_cidr))
    incremental = _private_nft(render_full(old, service_cidr=CTX.service_cidr), render_update(old, new) or "\n")
    assert incremental == expected


def test_full_replace_applies_over_an_existing_table_and_delete_removes_it() -> None:
    old, new = _scenarios()[0]
    listing = _private_nft(render_full(old), render_full(new), render_delete())
    assert listing["chain"] == {} and listing["map"] == {}
