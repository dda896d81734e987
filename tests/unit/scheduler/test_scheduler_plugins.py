"""Each plugin's filter and score on hand-built pods and nodes."""

from __future__ import annotations

from typing import Any

import pytest

from kubelite.scheduler.cache import NodeInfo
from kubelite.scheduler.framework import Code
from kubelite.scheduler.plugins.balanced_allocation import BalancedAllocation, balance_score
from kubelite.scheduler.plugins.node_affinity import NodeAffinity
from kubelite.scheduler.plugins.node_name import NodeName
from kubelite.scheduler.plugins.node_ports import NodePorts
from kubelite.scheduler.plugins.node_resources_fit import NodeResourcesFit
from kubelite.scheduler.plugins.node_unschedulable import NodeUnschedulable
from kubelite.scheduler.plugins.pod_topology_spread import PodTopologySpread, spread_scores
from kubelite.scheduler.plugins.taint_toleration import TaintToleration
from kubelite.scheduler.podinfo import PodInfo

Obj = dict[str, Any]


def node(name: str = "n1", *, cpu: str = "4", memory: str = "8Gi", pods: str = "110", labels: Obj | None = None,
         taints: list[Obj] | None = None, unschedulable: bool = False) -> NodeInfo:
    return NodeInfo(name, {"metadata": {"name": name, "labels": labels or {}},
                           "spec": {"taints": taints or [], "unschedulable": unschedulable},
                           "status": {"allocatable": {"cpu": cpu, "memory": memory, "pods": pods}}})


def pod(name: str = "p", *, cpu: str | None = None, memory: str | None = None, spec: Obj | None = None,
        owner: str = "", priority: int = 0) -> PodInfo:
    requests = {k: v for k, v in (("cpu", cpu), ("memory", memory)) if v is not None}
    container: Obj = {"name": "c", "image": "x", "resources": {"requests": requests} if requests else {}}
    meta: Obj = {"name": name, "namespace": "default", "uid": f"uid-{name}"}
    if owner:
        meta["ownerReferences"] = [{"kind": "ReplicaSet", "name": owner, "uid": owner, "controller": True}]
    return PodInfo.of({"metadata": meta, "spec": {"containers": [container], "priority": priority, **(spec or {})}})


def place(info: NodeInfo, *pods: PodInfo) -> NodeInfo:
    for p in pods:
        info.add_pod(p)
    return info


# ----- NodeName / NodeUnschedulable ---------------------------------------------------------------

def test_node_name_matches_only_the_named_node() -> None:
    plugin, wanted = NodeName(), pod(spec={"nodeName": "n2"})
    assert not plugin.prefilter(pod())
    assert plugin.filter(wanted, node("n2")) is None
    status = plugin.filter(wanted, node("n1"))
    assert status is not None and status.reasons == ("node(s) didn't match the requested node name",)
    assert status.code == Code.UNSCHEDULABLE_AND_UNRESOLVABLE


def test_cordoned_node_rejects_unless_tolerated() -> None:
    plugin = NodeUnschedulable()
    status = plugin.filter(pod(), node(unschedulable=True))
    assert status is not None and status.reasons == ("node(s) were unschedulable",)
    assert plugin.filter(pod(), node()) is None
    tolerant = pod(spec={"tolerations": [{"key": "node.kubernetes.io/unschedulable", "operator": "Exists",
                                          "effect": "NoSchedule"}]})
    assert not plugin.prefilter(tolerant)
    assert plugin.prefilter(pod())


# ----- TaintToleration -----------------------------------------------------------------------------

CONTROL_PLANE = {"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}


def test_untolerated_taint_reason_names_the_first_taint() -> None:
    plugin = TaintToleration()
    tainted = node(taints=[{"key": "soft", "effect": "PreferNoSchedule"}, CONTROL_PLANE,
                           {"key": "gpu", "value": "yes", "effect": "NoExecute"}])
    status = plugin.filter(pod(), tainted)
    assert status is not None and status.code == Code.UNSCHEDULABLE_AND_UNRESOLVABLE
    assert status.reasons == ("node(s) had untolerated taint {node-role.kubernetes.io/control-plane: }",)
    half = pod(spec={"tolerations": [{"key": "node-role.kubernetes.io/control-plane", "operator": "Exists"}]})
    status = plugin.filter(half, tainted)
    assert status is not None and status.reasons == ("node(s) had untolerated taint {gpu: yes}",)


@pytest.mark.parametrize("toleration,tolerated", [
    ({"key": "gpu", "operator": "Equal", "value": "yes", "effect": "NoExecute"}, True),
    ({"key": "gpu", "value": "yes"}, True),  # empty operator means Equal; empty effect means all
    ({"key": "gpu", "operator": "Equal", "value": "no"}, False),
    ({"key": "gpu", "operator": "Exists", "effect": "NoSchedule"}, False),
    ({"operator": "Exists"}, True),  # empty key with Exists tolerates everything
    ({"key": "other", "operator": "Exists"}, False),
])
def test_toleration_matching(toleration: Obj, tolerated: bool) -> None:
    tainted = node(taints=[{"key": "gpu", "value": "yes", "effect": "NoExecute"}])
    status = TaintToleration().filter(pod(spec={"tolerations": [toleration]}), tainted)
    assert (status is None) is tolerated


def test_prefer_no_schedule_taints_score_lower() -> None:
    plugin = TaintToleration()
    clean, soft = node("a"), node("b", taints=[{"key": "x", "effect": "PreferNoSchedule"},
                                               {"key": "y", "effect": "PreferNoSchedule"}])
    assert plugin.filter(pod(), soft) is None  # PreferNoSchedule never filters
    scores = [plugin.score(pod(), clean), plugin.score(pod(), soft)]
    assert scores == [0, 2]
    plugin.normalize(pod(), scores)
    assert scores == [100, 0]
    tolerant = pod(spec={"tolerations": [{"key": "x", "operator": "Exists", "effect": "PreferNoSchedule"}]})
    assert plugin.score(tolerant, soft) == 1


# ----- NodeAffinity --------------------------------------------------------------------------------

def affinity(*terms: Obj, preferred: list[Obj] | None = None) -> Obj:
    node_affinity: Obj = {}
    if terms:
        node_affinity["requiredDuringSchedulingIgnoredDuringExecution"] = {"nodeSelectorTerms": list(terms)}
    if preferred:
        node_affinity["preferredDuringSchedulingIgnoredDuringExecution"] = preferred
    return {"affinity": {"nodeAffinity": node_affinity}}


def expr(key: str, operator: str, *values: str) -> Obj:
    return {"key": key, "operator": operator, **({"values": list(values)} if values else {})}


@pytest.mark.parametrize("requirement,labels,matches", [
    (expr("zone", "In", "a", "b"), {"zone": "b"}, True),
    (expr("zone", "In", "a"), {"zone": "b"}, False),
    (expr("zone", "In", "a"), {}, False),
    (expr("zone", "NotIn", "a"), {"zone": "b"}, True),
    (expr("zone", "NotIn", "a"), {}, True),
    (expr("zone", "NotIn", "a"), {"zone": "a"}, False),
    (expr("gpu", "Exists"), {"gpu": ""}, True),
    (expr("gpu", "Exists"), {}, False),
    (expr("gpu", "DoesNotExist"), {}, True),
    (expr("gpu", "DoesNotExist"), {"gpu": "1"}, False),
    (expr("cores", "Gt", "8"), {"cores": "16"}, True),
    (expr("cores", "Gt", "8"), {"cores": "8"}, False),
    (expr("cores", "Lt", "8"), {"cores": "4"}, True),
    (expr("cores", "Lt", "8"), {"cores": "many"}, False),
    (expr("cores", "Gt", "eight"), {"cores": "16"}, False),  # does not parse: matches nothing
    (expr("zone", "Exists", "a"), {"zone": "a"}, False),
    (expr("zone", "Sometimes", "a"), {"zone": "a"}, False),
])
def test_required_match_expressions(requirement: Obj, labels: Obj, matches: bool) -> None:
    info = pod(spec=affinity({"matchExpressions": [requirement]}))
    plugin = NodeAffinity()
    assert plugin.prefilter(info)
    status = plugin.filter(info, node(labels=labels))
    assert (status is None) is matches
    if status is not None:
        assert status.reasons == ("node(s) didn't match Pod's node affinity/selector",)


def test_terms_are_ored_and_requirements_anded() -> None:
    info = pod(spec=affinity({"matchExpressions": [expr("zone", "In", "a"), expr("disk", "In", "ssd")]},
                             {"matchExpressions": [expr("zone", "In", "z")]}))
    plugin = NodeAffinity()
    assert plugin.filter(info, node(labels={"zone": "a", "disk": "ssd"})) is None
    assert plugin.filter(info, node(labels={"zone": "a", "disk": "hdd"})) is not None
    assert plugin.filter(info, node(labels={"zone": "z"})) is None


def test_match_fields_metadata_name_and_empty_terms() -> None:
    plugin = NodeAffinity()
    by_name = pod(spec=affinity({"matchFields": [expr("metadata.name", "In", "n2")]}))
    assert plugin.filter(by_name, node("n2")) is None
    assert plugin.filter(by_name, node("n1")) is not None
    empty = pod(spec=affinity({}))
    assert plugin.filter(empty, node("n1")) is not None  # an empty term matches no node


def test_node_selector_must_match_every_label() -> None:
    plugin = NodeAffinity()
    info = pod(spec={"nodeSelector": {"disk": "ssd", "zone": "a"}})
    assert plugin.filter(info, node(labels={"disk": "ssd", "zone": "a", "x": "y"})) is None
    assert plugin.filter(info, node(labels={"disk": "ssd"})) is not None
    assert not plugin.prefilter(pod())


def test_preferred_terms_score_their_weights() -> None:
    plugin = NodeAffinity()
    info = pod(spec=affinity(preferred=[
        {"weight": 80, "preference": {"matchExpressions": [expr("disk", "In", "ssd")]}},
        {"weight": 20, "preference": {"matchExpressions": [expr("zone", "In", "a")]}},
        {"weight": 50, "preference": {}},  # empty preference matches nothing
    ]))
    assert plugin.prescore(info) and not plugin.prefilter(info)
    nodes = [node(labels={"disk": "ssd", "zone": "a"}), node(labels={"disk": "ssd"}), node()]
    scores = [plugin.score(info, n) for n in nodes]
    assert scores == [100, 80, 0]
    plugin.normalize(info, scores)
    assert scores == [100, 80, 0]
    assert not plugin.prescore(pod())


# ----- NodeResourcesFit / BalancedAllocation --------------------------------------------------------

def test_requests_against_allocatable_and_pod_count() -> None:
    plugin = NodeResourcesFit()
    busy = place(node(cpu="2", memory="4Gi", pods="2"), pod("a", cpu="1500m", memory="1Gi"))
    assert plugin.filter(pod(cpu="500m", memory="3Gi"), busy) is None
    status = plugin.filter(pod(cpu="600m", memory="3Gi"), busy)
    assert status is not None and status.reasons == ("Insufficient cpu",)
    assert status.code == Code.UNSCHEDULABLE
    place(busy, pod("b"))
    status = plugin.filter(pod(cpu="3", memory="5Gi"), busy)
    assert status is not None
    assert status.reasons == ("Too many pods", "Insufficient cpu", "Insufficient memory")
    assert status.code == Code.UNSCHEDULABLE_AND_UNRESOLVABLE  # more than the node has at all


def test_extended_resources_and_zero_pod_capacity() -> None:
    plugin = NodeResourcesFit()
    gpu_pod = pod(spec={"containers": [{"name": "c", "resources": {"requests": {"example.com/gpu": "1"}}}]})
    status = plugin.filter(gpu_pod, node())
    assert status is not None and status.reasons == ("Insufficient example.com/gpu",)
    status = plugin.filter(pod(), node(pods="0"))
    assert status is not None and status.reasons == ("Too many pods",)


def test_least_allocated_prefers_emptier_nodes() -> None:
    plugin = NodeResourcesFit()
    empty = node("a", cpu="4", memory="8Gi")
    half = place(node("b", cpu="4", memory="8Gi"), pod("x", cpu="2", memory="4Gi"))
    info = pod(cpu="1", memory="2Gi")
    assert plugin.score(info, empty) == 75  # (4-1)/4 and (8-2)/8
    assert plugin.score(info, half) == 25
    # best-effort pods count with upstream's non-zero defaults (100m, 200Mi)
    assert plugin.score(pod(), empty) == (97 + 97) // 2


def test_balanced_allocation() -> None:
    plugin = BalancedAllocation()
    assert not plugin.prescore(pod())  # best effort: skipped
    info = pod(cpu="1", memory="1Gi")
    assert plugin.prescore(info)
    even = node("a", cpu="4", memory="4Gi")
    assert plugin.score(info, even) == 100
    skewed = place(node("b", cpu="4", memory="4Gi"), pod("x", cpu="2"))
    assert plugin.score(info, skewed) == 75  # fractions 0.75 and 0.25
    assert balance_score([0.5]) == 100
    assert balance_score([1.0, 0.0, 0.5]) == 59


# ----- NodePorts -----------------------------------------------------------------------------------

def with_port(name: str, port: int, *, ip: str = "", protocol: str = "TCP") -> PodInfo:
    entry: Obj = {"containerPort": 80, "hostPort": port, "protocol": protocol}
    if ip:
        entry["hostIP"] = ip
    return pod(name, spec={"containers": [{"name": "c", "ports": [entry]}]})


@pytest.mark.parametrize("placed,wanted,conflict", [
    (with_port("a", 8080), with_port("b", 8080), True),
    (with_port("a", 8080), with_port("b", 8081), False),
    (with_port("a", 8080), with_port("b", 8080, protocol="UDP"), False),
    (with_port("a", 8080, ip="10.0.0.1"), with_port("b", 8080, ip="10.0.0.2"), False),
    (with_port("a", 8080, ip="10.0.0.1"), with_port("b", 8080, ip="10.0.0.1"), True),
    (with_port("a", 8080, ip="10.0.0.1"), with_port("b", 8080), True),  # 0.0.0.0 clashes with any IP
    (with_port("a", 8080), with_port("b", 8080, ip="10.0.0.1"), True),
])
def test_host_port_conflicts(placed: PodInfo, wanted: PodInfo, conflict: bool) -> None:
    plugin = NodePorts()
    assert plugin.prefilter(wanted) and not plugin.prefilter(pod())
    status = plugin.filter(wanted, place(node(), placed))
    assert (status is not None) is conflict
    if status is not None:
        assert status.reasons == ("node(s) didn't have free ports for the requested pod ports",)
        assert status.code == Code.UNSCHEDULABLE


def test_removing_a_pod_frees_its_ports() -> None:
    info = place(node(), with_port("a", 8080))
    info.remove_pod(with_port("a", 8080))
    assert NodePorts().filter(with_port("b", 8080), info) is None


# ----- PodTopologySpread ---------------------------------------------------------------------------

def test_fewer_replicas_of_the_same_owner_score_higher() -> None:
    plugin = PodTopologySpread()
    assert not plugin.prescore(pod())
    info = pod("new", owner="rs-1")
    nodes = [place(node("a"), pod("a1", owner="rs-1"), pod("a2", owner="rs-1")),
             place(node("b"), pod("b1", owner="rs-1"), pod("b2", owner="other")),
             node("c")]
    scores = [plugin.score(info, n) for n in nodes]
    assert scores == [2, 1, 0]
    plugin.normalize(info, scores)
    assert scores[2] == 100 and scores[0] < scores[1] < scores[2]
    assert spread_scores([0, 0, 0]) == [100, 100, 100]
