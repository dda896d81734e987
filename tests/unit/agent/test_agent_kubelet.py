"""A kubelet against an in-memory API: registration, leases, node status, the pod lifecycle, and
the host that drives many kubelets (dispatch, heartbeat wheel)."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

from agent_fakeapi import FakeAPI

from kubelite.agent.config import KubeletConfig, NodeConfig
from kubelite.agent.host import HeartbeatWheel, KubeletHost
from kubelite.agent.kubelet import AgentClients, Kubelet
from kubelite.agent.runtime.fake import FakeRuntime
from kubelite.client.resources import NODES, PODS

Obj = dict[str, Any]
CONFIG = KubeletConfig(record_events=False)


def kubelet(api: FakeAPI, name: str = "n1", config: KubeletConfig = CONFIG) -> Kubelet:
    clients = AgentClients(api, api, api)  # type: ignore[arg-type]
    return Kubelet(clients, NodeConfig(name=name, internal_ip="198.19.128.16"), FakeRuntime(name), config=config)


async def until(check: Any, timeout: float = 2.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not check():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.005)


async def test_register_creates_the_node_with_status_and_an_owned_lease() -> None:
    api = FakeAPI()
    k = kubelet(api)
    await k.register()
    node = api.objects[("nodes", "", "n1")]
    assert node["status"]["nodeInfo"]["kubeletVersion"] == "v1.37.0"
    lease = api.objects[("leases", "kube-node-lease", "n1")]
    assert lease["spec"]["holderIdentity"] == "n1" and lease["spec"]["leaseDurationSeconds"] == 40
    assert lease["metadata"]["ownerReferences"] == [{"apiVersion": "v1", "kind": "Node", "name": "n1",
                                                     "uid": node["metadata"]["uid"]}]
    assert [c[0] for c in api.calls] == ["create", "create"]


async def test_restart_adopts_the_existing_node_and_lease() -> None:
    api = FakeAPI()
    await kubelet(api).register()
    api.calls.clear()
    again = kubelet(api)
    await again.register()
    assert [c[:2] for c in api.calls] == [("create", "nodes"), ("get", "nodes"), ("patch", "nodes"),
                                          ("create", "leases"), ("get", "leases"), ("update", "leases")]
    assert again.lease is not None and again.node is not None


async def test_heartbeat_is_one_lease_update_and_status_only_when_due() -> None:
    api = FakeAPI()
    k = kubelet(api)
    await k.register()
    renewed = api.objects[("leases", "kube-node-lease", "n1")]["spec"]["renewTime"]
    api.calls.clear()
    await k.heartbeat()
    assert api.calls == [("update", "leases", "n1")]
    assert api.objects[("leases", "kube-node-lease", "n1")]["spec"]["renewTime"] >= renewed
    k.config = dataclasses.replace(CONFIG, status_report_frequency=0)
    api.calls.clear()
    await k.heartbeat()
    assert api.calls == [("update", "leases", "n1"), ("patch", "nodes", "n1/status")]


async def test_lease_conflict_rereads_and_a_lost_lease_is_recreated() -> None:
    api = FakeAPI()
    k = kubelet(api)
    await k.register()
    assert k.lease is not None
    k.lease["metadata"]["resourceVersion"] = "1"  # stale
    await k.renew_lease()
    del api.objects[("leases", "kube-node-lease", "n1")]
    await k.renew_lease()
    assert ("leases", "kube-node-lease", "n1") in api.objects


async def test_status_drift_is_corrected_and_pod_cidr_reaches_the_runtime() -> None:
    api = FakeAPI()
    k = kubelet(api)
    await k.register()
    node = api.objects[("nodes", "", "n1")]
    node = await api.patch(NODES, "n1", {"spec": {"podCIDR": "198.18.7.0/24", "podCIDRs": ["198.18.7.0/24"]}})
    k.node_changed(node)
    assert isinstance(k.runtime, FakeRuntime) and k.runtime.ipam is not None
    assert k.runtime.ipam.cidr == "198.18.7.0/24"
    stale = [dict(c, status="Unknown", reason="NodeStatusUnknown") for c in node["status"]["conditions"]]
    node = await api.update(NODES, {**node, "status": {**node["status"], "conditions": stale}}, subresource="status")
    api.calls.clear()
    k.node_changed(node)
    await until(lambda: api.calls)
    await until(lambda: k._report_task is not None and k._report_task.done())
    assert api.calls == [("patch", "nodes", "n1/status")]
    ready = next(c for c in api.objects[("nodes", "", "n1")]["status"]["conditions"] if c["type"] == "Ready")
    assert ready["status"] == "True"


async def create_pod(api: FakeAPI, name: str = "p", **spec: Any) -> Obj:
    pod = {"metadata": {"name": name, "namespace": "ns"},
           "spec": {"nodeName": "n1", "terminationGracePeriodSeconds": 30,
                    "containers": [{"name": "app", "image": "nginx"}], **spec},
           "status": {"phase": "Pending"}}
    return await api.create(PODS, pod, "ns")


def stored(api: FakeAPI, name: str = "p") -> Obj:
    return api.objects[("pods", "ns", name)]


async def test_pod_runs_after_the_node_gets_its_cidr_then_is_deleted_gracefully() -> None:
    api = FakeAPI()
    k = kubelet(api)
    await k.register()
    pod = await create_pod(api)
    k.pod_changed(pod)
    await until(lambda: stored(api)["status"].get("containerStatuses"))
    assert stored(api)["status"]["phase"] == "Pending"  # no podCIDR yet: ContainerCreating
    assert stored(api)["status"]["containerStatuses"][0]["state"]["waiting"]["reason"] == "ContainerCreating"
    node = await api.patch(NODES, "n1", {"spec": {"podCIDR": "198.18.7.0/24", "podCIDRs": ["198.18.7.0/24"]}})
    k.node_changed(node)  # the waiting pod is retried at once
    await until(lambda: stored(api)["status"]["phase"] == "Running")
    assert stored(api)["status"]["podIP"] == "198.18.7.2"

    patches = len(api.calls_of("patch", "pods"))
    k.pod_changed(dict(stored(api)))  # the watch event of our own write
    await asyncio.sleep(0.02)
    assert len(api.calls_of("patch", "pods")) == patches  # nothing changed: no write

    deleting = dict(stored(api))
    deleting["metadata"] = {**deleting["metadata"], "deletionTimestamp": "2025-01-01T00:00:30Z",
                            "deletionGracePeriodSeconds": 30}
    api.objects[("pods", "ns", "p")] = deleting
    k.pod_changed(deleting)
    await until(lambda: ("pods", "ns", "p") not in api.objects)
    assert k.runtime.pod_status(deleting["metadata"]["uid"]) is None
    assert isinstance(k.runtime, FakeRuntime) and k.runtime.ipam is not None and k.runtime.ipam.in_use() == 0


async def test_ready_delay_reports_ready_later() -> None:
    api = FakeAPI()
    k = kubelet(api, config=dataclasses.replace(CONFIG, ready_delay=0.05))
    await k.register()
    k.node_changed(await api.patch(NODES, "n1", {"spec": {"podCIDR": "198.18.7.0/24",
                                                          "podCIDRs": ["198.18.7.0/24"]}}))
    k.pod_changed(await create_pod(api))

    def ready() -> str:
        conds = stored(api)["status"].get("conditions") or []
        return next((c["status"] for c in conds if c["type"] == "Ready"), "")

    await until(lambda: stored(api)["status"]["phase"] == "Running")
    assert ready() == "False"
    await until(lambda: ready() == "True")
    await k.stop()


async def test_host_dispatches_by_node_name() -> None:
    api = FakeAPI()
    one, two = kubelet(api, "n1"), kubelet(api, "n2")
    host = KubeletHost(api, [one, two], config=CONFIG)  # type: ignore[arg-type]
    seen: list[tuple[str, str]] = []
    one.pods.update = lambda pod, deleted=False: seen.append(("n1", pod["metadata"]["uid"]))  # type: ignore[method-assign]
    two.pods.update = lambda pod, deleted=False: seen.append(("n2", pod["metadata"]["uid"]))  # type: ignore[method-assign]
    pod = {"metadata": {"name": "p", "namespace": "ns", "uid": "a"}, "spec": {"nodeName": "n1"}}
    host._pod_added(pod)
    host._pod_updated(pod, {**pod, "metadata": {**pod["metadata"], "uid": "b"}, "spec": {"nodeName": "n2"}})
    host._pod_added({"metadata": {"name": "q", "namespace": "ns", "uid": "c"}, "spec": {"nodeName": "other"}})
    assert seen == [("n1", "a"), ("n1", "a"), ("n2", "b")]  # the replaced pod is deleted from n1


async def test_wheel_spreads_heartbeats_and_skips_a_busy_kubelet() -> None:
    class Beat:
        def __init__(self, name: str, delay: float = 0.0) -> None:
            self.name, self.delay, self.times = name, delay, 0

        async def heartbeat(self) -> None:
            self.times += 1
            await asyncio.sleep(self.delay)

    wheel = HeartbeatWheel(0.1, slots=4)
    fast = [Beat(f"f{i}") for i in range(7)]
    slow = Beat("slow", delay=0.35)
    for beat in [*fast, slow]:
        wheel.add(beat)  # type: ignore[arg-type]
    assert [len(s) for s in wheel.slots] == [2, 2, 2, 2]
    task = asyncio.create_task(wheel.run())
    await asyncio.sleep(0.52)
    task.cancel()
    assert all(4 <= b.times <= 6 for b in fast), [b.times for b in fast]
    assert slow.times == 2 and wheel.skipped >= 2


async def test_registering_removes_what_the_runtime_holds_for_pods_gone_from_the_node() -> None:
    api = FakeAPI()
    runtime = FakeRuntime("n1")
    runtime.update_pod_cidr("198.18.7.0/24")
    await runtime.create_sandbox({"metadata": {"name": "old", "namespace": "ns", "uid": "gone"}, "spec": {}},
                                 host_ip="h")
    await runtime.start_container("gone", {"name": "app", "image": "nginx"})
    k = Kubelet(AgentClients(api, api, api), NodeConfig(name="n1", internal_ip="198.19.128.16"),  # type: ignore[arg-type]
                runtime, config=CONFIG)
    assert runtime.on_container_exit is not None  # the kubelet listens for exits
    await k.register()
    assert runtime.pod_uids() == []
    await k.stop()
