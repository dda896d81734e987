"""Node lifecycle: taint and toleration helpers, node health decisions, and the controller's passes
against an in-memory API (silent node → Unknown → tainted → pods evicted by their tolerations)."""

from __future__ import annotations

import asyncio
import copy
import time
from types import SimpleNamespace
from typing import Any

from kubelite.client import InformerFactory
from kubelite.controllers.nodelifecycle import NodeLifecycleController
from kubelite.controllers.nodelifecycle import health as hl
from kubelite.controllers.nodelifecycle import taints as tt
from kubelite.objects import errors

Obj = dict[str, Any]
UNREACHABLE, NOT_READY = tt.UNREACHABLE, tt.NOT_READY
NOW = "2025-01-01T00:00:00Z"


def node(name: str = "n1", ready: str = "True", taints: list[Obj] | None = None, **labels: str) -> Obj:
    return {"metadata": {"name": name, "uid": f"uid-{name}", "resourceVersion": "1", "labels": labels,
                         "creationTimestamp": NOW},
            "spec": {"taints": taints or []},
            "status": {"conditions": [
                {"type": t, "status": "False", "lastHeartbeatTime": NOW} for t in hl.MONITORED_CONDITIONS[1:]
            ] + [{"type": "Ready", "status": ready, "lastHeartbeatTime": NOW, "lastTransitionTime": NOW}]}}


def taint(key: str, effect: str = "NoExecute", **extra: Any) -> Obj:
    return {"key": key, "effect": effect, **extra}


# ----- taints and tolerations ------------------------------------------------------------------------

def test_tolerates() -> None:
    t = taint(UNREACHABLE)
    assert tt.tolerates({"operator": "Exists"}, t)  # empty key with Exists: everything
    assert tt.tolerates({"key": UNREACHABLE, "operator": "Exists", "effect": "NoExecute"}, t)
    assert not tt.tolerates({"key": UNREACHABLE, "operator": "Exists", "effect": "NoSchedule"}, t)
    assert not tt.tolerates({"key": NOT_READY, "operator": "Exists"}, t)
    assert tt.tolerates({"key": "k", "value": "v"}, taint("k", value="v"))  # operator defaults to Equal
    assert not tt.tolerates({"key": "k", "operator": "Equal", "value": "w"}, taint("k", value="v"))


def test_eviction_delay_follows_the_shortest_matching_toleration() -> None:
    taints = [taint(UNREACHABLE)]
    pod = {"spec": {"tolerations": [
        {"key": UNREACHABLE, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300},
        {"operator": "Exists", "tolerationSeconds": 5}]}}
    assert tt.eviction_delay(pod, taints) == 300.0  # the first match for each taint counts
    assert tt.eviction_delay({"spec": {}}, taints) == 0.0  # not tolerated: at once
    assert tt.eviction_delay({"spec": {"tolerations": [{"operator": "Exists"}]}}, taints) is None  # forever
    assert tt.eviction_delay({"spec": {"tolerations": [{"operator": "Exists", "tolerationSeconds": -3}]}},
                             taints) == 0.0
    assert tt.eviction_delay(pod, []) is None
    both = [taint(UNREACHABLE), taint("custom")]
    assert tt.eviction_delay(pod, both) == 5.0


def test_no_schedule_taints_follow_conditions() -> None:
    n = node(ready="False")
    n["status"]["conditions"][0]["status"] = "True"  # MemoryPressure
    n["spec"]["unschedulable"] = True
    n["spec"]["taints"] = [taint(UNREACHABLE, "NoSchedule"), taint("mine", "NoSchedule")]
    add, remove = tt.no_schedule_diff(n)
    assert add == {NOT_READY, "node.kubernetes.io/memory-pressure", tt.UNSCHEDULABLE}
    assert remove == {UNREACHABLE}  # a taint we do not manage ("mine") stays
    updated = tt.with_taints(n, add=[(k, "NoSchedule") for k in sorted(add)],
                             remove=[(k, "NoSchedule") for k in remove], now=NOW)
    assert {(t["key"], t["effect"]) for t in updated} == {("mine", "NoSchedule"), *((k, "NoSchedule") for k in add)}
    assert all(t.get("timeAdded") == NOW for t in updated if t["key"] != "mine")


# ----- health ---------------------------------------------------------------------------------------

def test_probe_time_moves_only_when_the_lease_or_heartbeat_does() -> None:
    n = node()
    lease = {"spec": {"renewTime": "2025-01-01T00:00:01.000000Z"}}
    first = hl.observe(None, n, lease, now=100.0)
    assert first.probe == 100.0
    assert hl.observe(first, n, lease, now=130.0).probe == 100.0
    renewed = {"spec": {"renewTime": "2025-01-01T00:00:11.000000Z"}}
    assert hl.observe(first, n, renewed, now=130.0).probe == 130.0
    n["status"]["conditions"][-1]["lastHeartbeatTime"] = "2025-01-01T00:05:00Z"
    assert hl.observe(first, n, lease, now=131.0).probe == 131.0
    assert not hl.silent(first, n, 140.0, grace=40, startup_grace=60)
    assert hl.silent(first, n, 141.0, grace=40, startup_grace=60)
    bare = {"metadata": {"name": "x"}, "status": {}}
    assert not hl.silent(first, bare, 141.0, grace=40, startup_grace=60)  # never posted: startup grace


def test_unknown_conditions() -> None:
    n = node()
    n["status"]["conditions"] = n["status"]["conditions"][1:]  # no MemoryPressure posted
    conditions = hl.unknown_conditions(n, "T")
    assert conditions is not None
    by = {c["type"]: c for c in conditions}
    assert (by["Ready"]["status"], by["Ready"]["reason"], by["Ready"]["message"], by["Ready"]["lastTransitionTime"],
            by["Ready"]["lastHeartbeatTime"]) == ("Unknown", "NodeStatusUnknown", "Kubelet stopped posting node status.",
                                                  "T", NOW)
    assert (by["MemoryPressure"]["reason"], by["MemoryPressure"]["message"]) == (
        "NodeStatusNeverUpdated", "Kubelet never posted node status.")
    n["status"]["conditions"] = conditions
    assert hl.unknown_conditions(n, "T2") is None


def test_zone_states_and_rates() -> None:
    assert hl.zone_state(["True", "True", "Unknown"]) == hl.NORMAL
    assert hl.zone_state(["Unknown"] * 3) == hl.FULL
    assert hl.zone_state(["True", "Unknown", "Unknown", "False"]) == hl.PARTIAL  # 3 of 4
    assert hl.zone_state(["True", "Unknown", "Unknown"]) == hl.NORMAL  # only 2 down
    assert hl.zone_rate(hl.PARTIAL, 10) == 0.0 and hl.zone_rate(hl.PARTIAL, 51) == hl.SECONDARY_EVICTION_QPS
    assert hl.zone_rate(hl.FULL, 3) == hl.zone_rate(hl.NORMAL, 3) == hl.EVICTION_QPS
    nodes = [node("a", **{"topology.kubernetes.io/zone": "z1"}), node("b", **{hl.EXCLUDE_DISRUPTION: ""})]
    assert hl.zone_states(nodes, {"a": "True"}) == {":\x00:z1": (hl.NORMAL, 1)}


def test_no_execute_actions() -> None:
    plain = node()
    assert hl.no_execute_action(plain, "Unknown", all_disrupted=False) == hl.TaintAction(add=(UNREACHABLE,),
                                                                                        rate_limited=True)
    assert hl.no_execute_action(plain, "False", all_disrupted=False).add == (NOT_READY,)
    swapped = hl.no_execute_action(node(taints=[taint(UNREACHABLE)]), "False", all_disrupted=False)
    assert swapped == hl.TaintAction(add=(NOT_READY,), remove=(UNREACHABLE,))
    assert hl.no_execute_action(node(taints=[taint(UNREACHABLE)]), "True", all_disrupted=False).remove == (
        UNREACHABLE,)
    assert hl.no_execute_action(node(taints=[taint(UNREACHABLE)]), "Unknown", all_disrupted=True).remove == (
        UNREACHABLE,)
    assert hl.no_execute_action(node(taints=[taint(UNREACHABLE)]), "Unknown", all_disrupted=False) == hl.TaintAction()


def test_token_bucket() -> None:
    bucket = hl.TokenBucket(0.1)
    assert bucket.take(0.0) and not bucket.take(5.0) and bucket.take(10.0)
    bucket.refund()
    assert bucket.take(10.0)


# ----- the controller --------------------------------------------------------------------------------

class FakeAPI:
    """Writes land in the controller's informer caches at once (as a watch would deliver them)."""

    def __init__(self) -> None:
        self.ctl: NodeLifecycleController | None = None
        self.deleted: list[str] = []
        self.rv = 10

    def _store(self, plural: str, obj: Obj) -> Obj:
        assert self.ctl is not None
        self.rv += 1
        obj = copy.deepcopy(obj)
        obj["metadata"]["resourceVersion"] = str(self.rv)
        informer = {"nodes": self.ctl.nodes, "pods": self.ctl.pods}[plural]
        key = f"{obj['metadata']['namespace']}/{obj['metadata']['name']}" if plural == "pods" else obj["metadata"]["name"]
        informer._apply("MODIFIED", obj)
        return copy.deepcopy(informer.cache[key])

    async def update(self, rt: Any, obj: Obj, *, subresource: str | None = None) -> Obj:
        assert self.ctl is not None
        current = self.ctl.nodes.get(obj["metadata"]["name"])
        assert current is not None
        if current["metadata"]["resourceVersion"] != obj["metadata"]["resourceVersion"]:
            raise errors.Conflict("modified")
        return self._store("nodes", obj)

    async def patch(self, rt: Any, name: str, patch: Obj, namespace: str | None = None, **_: Any) -> Obj:
        assert self.ctl is not None
        pod = copy.deepcopy(self.ctl.pods.get(f"{namespace}/{name}"))
        assert pod is not None
        conditions = {c["type"]: c for c in pod["status"].get("conditions", [])}
        for cond in patch["status"]["conditions"]:
            conditions[cond["type"]] = {**conditions.get(cond["type"], {}), **cond}
        pod["status"]["conditions"] = list(conditions.values())
        return self._store("pods", pod)

    async def delete(self, rt: Any, name: str, namespace: str | None = None, **_: Any) -> Obj:
        self.deleted.append(f"{namespace}/{name}")
        return {}

    async def create(self, rt: Any, obj: Obj, namespace: str | None = None, **_: Any) -> Obj:
        return obj  # events


def pod(name: str, node_name: str, tolerations: list[Obj] | None = None) -> Obj:
    return {"metadata": {"name": name, "namespace": "ns", "uid": f"uid-{name}", "resourceVersion": "1"},
            "spec": {"nodeName": node_name, "tolerations": tolerations or []},
            "status": {"conditions": [{"type": "Ready", "status": "True"}]}}


async def test_a_silent_node_is_marked_tainted_and_emptied() -> None:
    api = FakeAPI()
    ctl = NodeLifecycleController(api, InformerFactory(api),  # type: ignore[arg-type]
                                  options=SimpleNamespace(node_monitor_grace_period=0.2))
    api.ctl = ctl
    for n in (node("a"), node("b"), node("c")):
        ctl.nodes._apply("ADDED", n)
    tolerant = [{"key": UNREACHABLE, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 1}]
    for p in (pod("now", "c"), pod("later", "c", tolerant), pod("elsewhere", "a")):
        ctl.pods._apply("ADDED", p)
    ctl.queue = type(ctl.queue)("test")  # drop the keys the ADDED events queued

    await ctl.monitor()  # first sight: every node gets a full grace period
    assert ctl.observed_ready == {"a": "True", "b": "True", "c": "True"}
    await asyncio.sleep(0.25)
    for name in ("a", "b"):  # a and b heartbeat, c is silent
        fresh = copy.deepcopy(ctl.nodes.get(name))
        assert fresh is not None
        fresh["status"]["conditions"][-1]["lastHeartbeatTime"] = "2025-01-01T00:00:05Z"
        api._store("nodes", fresh)
    await ctl.monitor()
    c = ctl.nodes.get("c")
    assert c is not None and tt.ready_status(c) == "Unknown"
    assert tt.has_taint(c, UNREACHABLE, "NoExecute")
    assert ctl.observed_ready["a"] == "True" and not tt.taints(ctl.nodes.get("a") or {})
    # its pods were marked not ready
    later = ctl.pods.get("ns/later")
    assert later is not None and later["status"]["conditions"][0]["status"] == "False"

    await ctl.sync_node("c")  # NoSchedule taint, and c's pods queued for the eviction check
    assert tt.has_taint(ctl.nodes.get("c") or {}, UNREACHABLE, "NoSchedule")
    await ctl.sync_pod("ns/now")
    await ctl.sync_pod("ns/later")
    await ctl.sync_pod("ns/elsewhere")
    assert api.deleted == ["ns/now"]
    await ctl.sync_pod("ns/now")  # the cache has not caught up: no second delete
    assert api.deleted == ["ns/now"]
    started = time.monotonic()
    while "ns/later" not in api.deleted and time.monotonic() - started < 3:
        key = await asyncio.wait_for(ctl.queue.get(), 3)  # the key comes back when its toleration ends
        ctl.queue.done(key)
        if key.startswith("pod:"):
            await ctl.sync_pod(key[4:])
    assert api.deleted == ["ns/now", "ns/later"]
    evicted = ctl.pods.get("ns/later")
    assert evicted is not None and any(cond["type"] == "DisruptionTarget" for cond in evicted["status"]["conditions"])
    ctl.stop()
    ctl.events.close()
