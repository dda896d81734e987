"""Garbage collector, namespace and serviceaccount controllers against a real server, driven by
the real kubectl. Owners and dependents are made by hand (no replicaset/deployment controllers):
a Deployment owning a ReplicaSet owning Pods, linked by uid as those controllers would link them.
Unbound pods go at once when deleted; pods with spec.nodeName wait for "their kubelet", which the
tests play by deleting them with gracePeriodSeconds=0."""

from __future__ import annotations

import contextlib
import json
import os
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from kubelite.client import Client, Connection
from kubelite.client.resources import (
    CONFIGMAPS,
    DEPLOYMENTS,
    NAMESPACES,
    NODES,
    PODS,
    REPLICASETS,
    SECRETS,
    SERVICEACCOUNTS,
)
from kubelite.objects.errors import NotFound
from kubelite.objects.registry import ResourceType
from tests.integration.conftest import ServerThread

Obj = dict[str, Any]
LABELS = {"app": "web"}
POD_SPEC = {"containers": [{"name": "c", "image": "busybox"}]}


class Cluster(ServerThread):
    """The server plus our own client on its loop, for making owners and dependents quickly."""

    client: Client

    def start(self) -> Cluster:
        super().start()
        assert self.runtime.socket_path is not None
        self.client = Client(Connection.unix(self.runtime.socket_path))
        return self


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    srv = Cluster(tmp_path_factory.mktemp("gc-ns"), controllers="garbagecollector,namespace,serviceaccount").start()
    yield srv
    srv.call(srv.client.close())
    srv.stop()


@pytest.fixture
def ns(cluster: Cluster) -> str:
    name = f"gc-{uuid.uuid4().hex[:8]}"
    cluster.kubectl("create", "namespace", name)
    return name


@pytest.fixture
def finalize_route(cluster: Cluster, ns: str) -> None:
    """The namespace controller releases a namespace through PUT /api/v1/namespaces/<ns>/finalize;
    skip (rather than hang in `kubectl delete namespace`) while the API does not route it."""
    namespace = api(cluster, "get", NAMESPACES, ns)
    try:
        api(cluster, "update", NAMESPACES, namespace, subresource="finalize")  # finalizers unchanged
    except NotFound as exc:
        pytest.skip(f"the API does not serve namespaces/<name>/finalize: {exc}")


# ----- helpers -----------------------------------------------------------------------------------

def api(cluster: Cluster, method: str, *args: Any, **kwargs: Any) -> Any:
    return cluster.call(getattr(cluster.client, method)(*args, **kwargs))


def get(cluster: Cluster, rt: ResourceType, name: str, namespace: str | None = None) -> Obj | None:
    try:
        obj: Obj = api(cluster, "get", rt, name, namespace)
    except NotFound:
        return None
    return obj


def names(cluster: Cluster, rt: ResourceType, namespace: str) -> list[str]:
    return sorted(item["metadata"]["name"] for item in api(cluster, "list", rt, namespace)["items"])


def wait_for(condition: Callable[[], Any], *, timeout: float = 20.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def ref(owner: Obj, *, controller: bool = True, block: bool = True) -> Obj:
    return {"apiVersion": owner["apiVersion"], "kind": owner["kind"], "name": owner["metadata"]["name"],
            "uid": owner["metadata"]["uid"], "controller": controller, "blockOwnerDeletion": block}


def workload_spec() -> Obj:
    return {"replicas": 1, "selector": {"matchLabels": LABELS},
            "template": {"metadata": {"labels": LABELS}, "spec": POD_SPEC}}


def make_pod(cluster: Cluster, ns: str, name: str, owners: list[Obj], *, node: str = "") -> Obj:
    spec = {**POD_SPEC, **({"nodeName": node} if node else {})}
    pod = {"apiVersion": "v1", "kind": "Pod", "spec": spec,
           "metadata": {"name": name, "labels": LABELS, "ownerReferences": owners}}
    made: Obj = api(cluster, "create", PODS, pod, ns)
    return made


def make_chain(cluster: Cluster, ns: str, *, pods: int = 2, node: str = "") -> tuple[Obj, Obj, list[Obj]]:
    """Deployment d -> ReplicaSet d-rs -> pods d-rs-<i>, linked as the workload controllers link them."""
    deploy = api(cluster, "create", DEPLOYMENTS, {"metadata": {"name": "d"}, "spec": workload_spec()}, ns)
    rs = api(cluster, "create", REPLICASETS, {"metadata": {"name": "d-rs", "ownerReferences": [ref(deploy)]},
                                              "spec": workload_spec()}, ns)
    made = [make_pod(cluster, ns, f"d-rs-{i}", [ref(rs)], node=node) for i in range(pods)]
    return deploy, rs, made


def force_delete_pods(cluster: Cluster, ns: str) -> None:
    """What a kubelet does once its containers stopped."""
    for name in names(cluster, PODS, ns):
        with contextlib.suppress(NotFound):
            api(cluster, "delete", PODS, name, ns, grace_period=0)


# ----- garbage collector -----------------------------------------------------------------------

def test_background_delete_removes_replicaset_and_pods(cluster: Cluster, ns: str) -> None:
    make_chain(cluster, ns, pods=3)
    cluster.kubectl("delete", "deployment", "d", "-n", ns)
    wait_for(lambda: not names(cluster, REPLICASETS, ns) and not names(cluster, PODS, ns),
             what="replicaset and pods collected")


def test_orphan_delete_leaves_replicaset_without_owner(cluster: Cluster, ns: str) -> None:
    _, rs, _ = make_chain(cluster, ns, pods=2)
    cluster.kubectl("delete", "deployment", "d", "-n", ns, "--cascade=orphan")  # waits until it is gone
    assert get(cluster, DEPLOYMENTS, "d", ns) is None
    left = get(cluster, REPLICASETS, "d-rs", ns)
    assert left is not None and left["metadata"]["uid"] == rs["metadata"]["uid"]
    assert "ownerReferences" not in left["metadata"]
    assert names(cluster, PODS, ns) == ["d-rs-0", "d-rs-1"]  # still owned by the replicaset
    time.sleep(0.3)  # nothing else happens to them afterwards
    assert names(cluster, PODS, ns) == ["d-rs-0", "d-rs-1"]


def test_foreground_delete_goes_bottom_up_with_finalizer_visible(cluster: Cluster, ns: str) -> None:
    make_chain(cluster, ns, pods=2, node="node-a")  # bound pods wait for "their kubelet"
    cluster.kubectl("delete", "deployment", "d", "-n", ns, "--cascade=foreground", "--wait=false")

    def terminating(rt: ResourceType, name: str) -> bool:
        obj = get(cluster, rt, name, ns)
        return bool(obj and obj["metadata"].get("deletionTimestamp")
                    and "foregroundDeletion" in obj["metadata"].get("finalizers", []))

    wait_for(lambda: terminating(DEPLOYMENTS, "d") and terminating(REPLICASETS, "d-rs"),
             what="deployment and replicaset waiting for dependents")
    wait_for(lambda: all(get(cluster, PODS, p, ns)["metadata"].get("deletionTimestamp")  # type: ignore[index]
                         for p in names(cluster, PODS, ns)), what="pods terminating")
    time.sleep(0.3)  # the owners keep waiting while their dependents exist
    assert terminating(DEPLOYMENTS, "d") and terminating(REPLICASETS, "d-rs")
    force_delete_pods(cluster, ns)
    wait_for(lambda: get(cluster, DEPLOYMENTS, "d", ns) is None, what="deployment gone")
    assert get(cluster, REPLICASETS, "d-rs", ns) is None and names(cluster, PODS, ns) == []


def test_dependent_with_two_owners_survives_one(cluster: Cluster, ns: str) -> None:
    a = api(cluster, "create", REPLICASETS, {"metadata": {"name": "a"}, "spec": workload_spec()}, ns)
    b = api(cluster, "create", REPLICASETS, {"metadata": {"name": "b"}, "spec": workload_spec()}, ns)
    make_pod(cluster, ns, "shared", [ref(a), ref(b, controller=False)])
    cluster.kubectl("delete", "replicaset", "a", "-n", ns)

    def only_b() -> bool:
        pod = get(cluster, PODS, "shared", ns)
        assert pod is not None, "the pod with a live owner was deleted"
        return [r["uid"] for r in pod["metadata"].get("ownerReferences", [])] == [b["metadata"]["uid"]]

    wait_for(only_b, what="dangling reference dropped")
    cluster.kubectl("delete", "replicaset", "b", "-n", ns)
    wait_for(lambda: get(cluster, PODS, "shared", ns) is None, what="pod collected with its last owner")


def test_dependent_of_owner_that_never_existed_is_collected(cluster: Cluster, ns: str) -> None:
    ghost = {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "ghost", "uid": str(uuid.uuid4())}
    make_pod(cluster, ns, "orphaned", [ghost])
    wait_for(lambda: get(cluster, PODS, "orphaned", ns) is None, what="pod of a missing owner collected")


def test_owner_with_same_name_but_other_uid_does_not_keep_dependent(cluster: Cluster, ns: str) -> None:
    old = api(cluster, "create", CONFIGMAPS, {"metadata": {"name": "owner"}}, ns)
    api(cluster, "delete", CONFIGMAPS, "owner", ns)
    api(cluster, "create", CONFIGMAPS, {"metadata": {"name": "owner"}}, ns)  # same name, new uid
    api(cluster, "create", SECRETS, {"metadata": {"name": "dep", "ownerReferences": [ref(old)]}}, ns)
    wait_for(lambda: get(cluster, SECRETS, "dep", ns) is None, what="secret of a replaced owner collected")
    assert get(cluster, CONFIGMAPS, "owner", ns) is not None


def test_unknown_owner_kind_is_left_alone(cluster: Cluster, ns: str) -> None:
    unknown = {"apiVersion": "example.com/v1", "kind": "Widget", "name": "w", "uid": str(uuid.uuid4())}
    make_pod(cluster, ns, "kept", [unknown])
    time.sleep(0.5)
    assert get(cluster, PODS, "kept", ns) is not None


def test_cluster_scoped_owner_collects_namespaced_dependent(cluster: Cluster, ns: str) -> None:
    node_name = f"n-{uuid.uuid4().hex[:6]}"
    node = api(cluster, "create", NODES, {"metadata": {"name": node_name}})
    make_pod(cluster, ns, "mirror", [ref(node, block=False)], node=node_name)
    time.sleep(0.2)
    assert get(cluster, PODS, "mirror", ns) is not None
    cluster.kubectl("delete", "node", node_name)
    # a bound pod deleted by the collector waits for its kubelet like any other
    wait_for(lambda: (get(cluster, PODS, "mirror", ns) or {}).get("metadata", {}).get("deletionTimestamp"),
             what="mirror pod deleted")


# ----- namespace and serviceaccount controllers ------------------------------------------------

def test_new_namespace_gets_default_serviceaccount_and_keeps_it(cluster: Cluster, ns: str) -> None:
    first = wait_for(lambda: get(cluster, SERVICEACCOUNTS, "default", ns), what="default serviceaccount")
    cluster.kubectl("delete", "serviceaccount", "default", "-n", ns)
    again = wait_for(lambda: get(cluster, SERVICEACCOUNTS, "default", ns), what="default serviceaccount recreated")
    assert again["metadata"]["uid"] != first["metadata"]["uid"]


@pytest.mark.usefixtures("finalize_route")
def test_kubectl_delete_namespace_completes_with_content_gone(cluster: Cluster, ns: str) -> None:
    make_chain(cluster, ns, pods=2)
    api(cluster, "create", CONFIGMAPS, {"metadata": {"name": "cm"}}, ns)
    api(cluster, "create", SECRETS, {"metadata": {"name": "s"}}, ns)
    cluster.kubectl("create", "service", "clusterip", "svc", "--tcp=80:80", "-n", ns)
    result = cluster.kubectl("delete", "namespace", ns, timeout=60)  # kubectl waits until it is gone
    assert f'namespace "{ns}" deleted' in result.stdout
    assert get(cluster, NAMESPACES, ns) is None
    for rt in (PODS, REPLICASETS, DEPLOYMENTS, CONFIGMAPS, SECRETS, SERVICEACCOUNTS):
        assert api(cluster, "list", rt, ns)["items"] == [], rt.plural


@pytest.mark.usefixtures("finalize_route")
def test_namespace_waits_for_terminating_pods_and_reports_them(cluster: Cluster, ns: str) -> None:
    make_pod(cluster, ns, "bound", [], node="node-a")
    api(cluster, "create", CONFIGMAPS, {"metadata": {"name": "cm"}}, ns)
    cluster.kubectl("delete", "namespace", ns, "--wait=false")

    def condition(ctype: str) -> Obj | None:
        current = get(cluster, NAMESPACES, ns) or {}
        return next((c for c in current.get("status", {}).get("conditions", []) if c["type"] == ctype), None)

    remaining = wait_for(lambda: (c := condition("NamespaceContentRemaining")) and c["status"] == "True" and c,
                         what="content remaining condition")
    assert remaining["reason"] == "SomeResourcesRemain"
    assert remaining["message"] == "Some resources are remaining: pods. has 1 resource instances"
    phase = json.loads(cluster.kubectl("get", "namespace", ns, "-o", "json").stdout)["status"]["phase"]
    assert phase == "Terminating"
    assert names(cluster, CONFIGMAPS, ns) == ["cm"]  # pods go first; the rest waits for them
    force_delete_pods(cluster, ns)
    wait_for(lambda: get(cluster, NAMESPACES, ns) is None, what="namespace gone")


# ----- scale -------------------------------------------------------------------------------------

def test_gc_of_many_pods_owned_by_one_replicaset(cluster: Cluster, ns: str) -> None:
    """KUBELITE_GC_PODS=1000 for the figure in the report; a smaller count keeps the suite fast."""
    count = int(os.environ.get("KUBELITE_GC_PODS", "200"))
    rs = api(cluster, "create", REPLICASETS, {"metadata": {"name": "big"}, "spec": workload_spec()}, ns)
    owner = [ref(rs)]

    async def create_all() -> None:
        import asyncio

        client = cluster.client
        limit = asyncio.Semaphore(32)

        async def one(i: int) -> None:
            async with limit:
                await client.create(PODS, {"metadata": {"name": f"big-{i}", "labels": LABELS,
                                                        "ownerReferences": owner}, "spec": POD_SPEC}, ns)

        await asyncio.gather(*(one(i) for i in range(count)))

    cluster.call(create_all(), timeout=300)
    wait_for(lambda: len(names(cluster, PODS, ns)) == count, what="pods created")
    time.sleep(0.5)  # let the collector's informers settle before timing
    start = time.monotonic()
    api(cluster, "delete", REPLICASETS, "big", ns)
    wait_for(lambda: not names(cluster, PODS, ns), timeout=300, what="pods collected")
    elapsed = time.monotonic() - start
    print(f"\nGC collected {count} pods of one ReplicaSet in {elapsed:.2f}s ({count / elapsed:.0f} pods/s)")
