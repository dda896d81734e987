"""The official `kubernetes` Python client against kubelite: CRUD, conflicts, watch, paging."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from kubernetes import client, watch
from kubernetes.client.rest import ApiException


def deployment(name: str, image: str = "nginx:1.25", replicas: int = 2) -> client.V1Deployment:
    labels = {"app": name}
    return client.V1Deployment(
        metadata=client.V1ObjectMeta(name=name, labels=labels),
        spec=client.V1DeploymentSpec(
            replicas=replicas, selector=client.V1LabelSelector(match_labels=labels),
            template=client.V1PodTemplateSpec(
                metadata=client.V1ObjectMeta(labels=labels),
                spec=client.V1PodSpec(containers=[client.V1Container(name="web", image=image)]))))


def test_crud_every_kind(api_client: Any, ns: str) -> None:
    core, apps = client.CoreV1Api(api_client), client.AppsV1Api(api_client)
    cm = core.create_namespaced_config_map(ns, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="c"),
                                                                  data={"a": "1"}))
    assert cm.metadata.uid and cm.metadata.resource_version
    secret = core.create_namespaced_secret(ns, client.V1Secret(metadata=client.V1ObjectMeta(name="s"),
                                                               string_data=None, data={"k": "dg=="}))
    assert secret.type == "Opaque"
    core.create_namespaced_service_account(ns, client.V1ServiceAccount(metadata=client.V1ObjectMeta(name="sa")))
    svc = core.create_namespaced_service(ns, client.V1Service(
        metadata=client.V1ObjectMeta(name="svc"),
        spec=client.V1ServiceSpec(selector={"app": "x"}, ports=[client.V1ServicePort(port=80)])))
    assert svc.spec.cluster_ip.startswith("198.19.") and svc.spec.ports[0].target_port == 80
    node = core.create_node(client.V1Node(metadata=client.V1ObjectMeta(name=f"node-{ns}")))
    assert node.metadata.name == f"node-{ns}"
    created = apps.create_namespaced_deployment(ns, deployment("web"))
    assert created.spec.strategy.type == "RollingUpdate" and created.metadata.generation == 1
    rs = apps.create_namespaced_replica_set(ns, client.V1ReplicaSet(
        metadata=client.V1ObjectMeta(name="rs1"),
        spec=client.V1ReplicaSetSpec(selector=client.V1LabelSelector(match_labels={"a": "b"}),
                                     template=client.V1PodTemplateSpec(
                                         metadata=client.V1ObjectMeta(labels={"a": "b"}),
                                         spec=client.V1PodSpec(containers=[client.V1Container(name="c",
                                                                                               image="x")])))))
    assert rs.spec.replicas == 1
    listed = apps.list_namespaced_deployment(ns)
    assert [d.metadata.name for d in listed.items] == ["web"] and listed.metadata.resource_version
    core.delete_node(f"node-{ns}")
    with pytest.raises(ApiException) as info:
        core.read_node(f"node-{ns}")
    assert info.value.status == 404


def test_update_with_stale_resource_version_conflicts(api_client: Any, ns: str) -> None:
    apps = client.AppsV1Api(api_client)
    first = apps.create_namespaced_deployment(ns, deployment("opt"))
    first.spec.replicas = 5
    updated = apps.replace_namespaced_deployment("opt", ns, first)
    assert updated.spec.replicas == 5 and updated.metadata.generation == 2
    first.spec.replicas = 7  # still carries the old resourceVersion
    with pytest.raises(ApiException) as info:
        apps.replace_namespaced_deployment("opt", ns, first)
    assert info.value.status == 409 and "the object has been modified" in info.value.body
    assert apps.read_namespaced_deployment("opt", ns).spec.replicas == 5


def test_status_subresource_separates_spec_and_status(api_client: Any, ns: str) -> None:
    apps = client.AppsV1Api(api_client)
    apps.create_namespaced_deployment(ns, deployment("st", replicas=3))
    body = {"status": {"replicas": 3, "readyReplicas": 2, "observedGeneration": 1}, "spec": {"replicas": 9}}
    result = apps.patch_namespaced_deployment_status("st", ns, body)
    assert result.status.ready_replicas == 2 and result.spec.replicas == 3
    # a main-resource update cannot write status
    changed = apps.patch_namespaced_deployment("st", ns, {"status": {"readyReplicas": 0}})
    assert changed.status.ready_replicas == 2


def test_scale_subresource(api_client: Any, ns: str) -> None:
    apps = client.AppsV1Api(api_client)
    apps.create_namespaced_deployment(ns, deployment("sc"))
    scale = apps.patch_namespaced_deployment_scale("sc", ns, {"spec": {"replicas": 0}})
    assert scale.spec.replicas == 0 and scale.status.selector == "app=sc"
    assert apps.read_namespaced_deployment("sc", ns).spec.replicas == 0


def test_watch_stream_delivers_events_in_order(api_client: Any, ns: str) -> None:
    core = client.CoreV1Api(api_client)
    rv = core.list_namespaced_config_map(ns).metadata.resource_version
    seen: list[tuple[str, str]] = []

    def consume() -> None:
        w = watch.Watch()
        for event in w.stream(core.list_namespaced_config_map, ns, resource_version=rv, timeout_seconds=5):
            seen.append((event["type"], event["object"].metadata.name))
            if len(seen) == 4:
                w.stop()

    thread = threading.Thread(target=consume)
    thread.start()
    time.sleep(0.3)
    core.create_namespaced_config_map(ns, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="w1")))
    core.create_namespaced_config_map(ns, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="w2")))
    core.patch_namespaced_config_map("w1", ns, {"data": {"x": "y"}})
    core.delete_namespaced_config_map("w2", ns)
    thread.join(10)
    assert seen == [("ADDED", "w1"), ("ADDED", "w2"), ("MODIFIED", "w1"), ("DELETED", "w2")]


def test_pods_binding_and_eviction(api_client: Any, ns: str) -> None:
    core = client.CoreV1Api(api_client)
    pod = client.V1Pod(metadata=client.V1ObjectMeta(name="p"),
                       spec=client.V1PodSpec(containers=[client.V1Container(name="c", image="busybox")]))
    core.create_namespaced_pod(ns, pod)
    binding = client.V1Binding(metadata=client.V1ObjectMeta(name="p"),
                               target=client.V1ObjectReference(kind="Node", name="n1"))
    core.create_namespaced_binding(ns, binding, _preload_content=False)
    assert core.read_namespaced_pod("p", ns).spec.node_name == "n1"
    with pytest.raises(ApiException) as info:
        core.create_namespaced_binding(ns, binding, _preload_content=False)
    assert info.value.status == 409
    eviction = client.V1Eviction(metadata=client.V1ObjectMeta(name="p", namespace=ns),
                                 delete_options=client.V1DeleteOptions(grace_period_seconds=0))
    core.create_namespaced_pod_eviction("p", ns, eviction)
    with pytest.raises(ApiException):
        core.read_namespaced_pod("p", ns)


def test_generate_name_dry_run_and_delete_collection(api_client: Any, ns: str) -> None:
    core = client.CoreV1Api(api_client)
    made = core.create_namespaced_config_map(ns, client.V1ConfigMap(
        metadata=client.V1ObjectMeta(generate_name="gen-", labels={"batch": "1"})))
    assert made.metadata.name.startswith("gen-") and len(made.metadata.name) == 9
    dry = core.create_namespaced_config_map(ns, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="dry")),
                                            dry_run="All")
    assert dry.metadata.name == "dry"
    with pytest.raises(ApiException):
        core.read_namespaced_config_map("dry", ns)
    for i in range(3):
        core.create_namespaced_config_map(ns, client.V1ConfigMap(
            metadata=client.V1ObjectMeta(name=f"b{i}", labels={"batch": "1"})))
    core.delete_collection_namespaced_config_map(ns, label_selector="batch=1")
    assert core.list_namespaced_config_map(ns, label_selector="batch=1").items == []


def test_namespace_lifecycle(api_client: Any) -> None:
    core = client.CoreV1Api(api_client)
    with pytest.raises(ApiException) as info:
        core.create_namespaced_config_map("does-not-exist", client.V1ConfigMap(
            metadata=client.V1ObjectMeta(name="x")))
    assert info.value.status == 404 and 'namespaces \\"does-not-exist\\" not found' in info.value.body
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name="doomed")))
    core.delete_namespace("doomed")
    assert core.read_namespace("doomed").status.phase == "Terminating"
    with pytest.raises(ApiException) as info:
        core.create_namespaced_config_map("doomed", client.V1ConfigMap(metadata=client.V1ObjectMeta(name="x")))
    assert info.value.status == 403 and "being terminated" in info.value.body
    with pytest.raises(ApiException) as info:
        core.delete_namespace("default")
    assert info.value.status == 403


def test_delete_preconditions(api_client: Any, ns: str) -> None:
    core = client.CoreV1Api(api_client)
    cm = core.create_namespaced_config_map(ns, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="pre")))
    wrong = client.V1DeleteOptions(preconditions=client.V1Preconditions(uid="00000000-0000-0000-0000-000000000000"))
    with pytest.raises(ApiException) as info:
        core.delete_namespaced_config_map("pre", ns, body=wrong)
    assert info.value.status == 409 and "Precondition failed: UID" in info.value.body
    stale = client.V1DeleteOptions(preconditions=client.V1Preconditions(resource_version="1"))
    with pytest.raises(ApiException) as info:
        core.delete_namespaced_config_map("pre", ns, body=stale)
    assert info.value.status == 409 and "ResourceVersion" in info.value.body
    right = client.V1DeleteOptions(preconditions=client.V1Preconditions(
        uid=cm.metadata.uid, resource_version=cm.metadata.resource_version))
    core.delete_namespaced_config_map("pre", ns, body=right)
    assert core.list_namespaced_config_map(ns, field_selector="metadata.name=pre").items == []


def test_service_allocations_are_unique_and_released(api_client: Any, ns: str) -> None:
    core = client.CoreV1Api(api_client)

    def nodeport(name: str, port: int | None = None) -> client.V1Service:
        return client.V1Service(metadata=client.V1ObjectMeta(name=name), spec=client.V1ServiceSpec(
            type="NodePort", ports=[client.V1ServicePort(port=80, node_port=port)]))

    made = [core.create_namespaced_service(ns, nodeport(f"s{i}")) for i in range(5)]
    ips = {s.spec.cluster_ip for s in made}
    ports = {s.spec.ports[0].node_port for s in made}
    assert len(ips) == 5 and len(ports) == 5 and all(30000 <= p <= 32767 for p in ports)
    taken = made[0].spec.ports[0].node_port
    with pytest.raises(ApiException) as info:
        core.create_namespaced_service(ns, nodeport("clash", taken))
    assert info.value.status == 422 and "provided port is already allocated" in info.value.body
    core.delete_namespaced_service("s0", ns)
    reused = core.create_namespaced_service(ns, nodeport("reuse", taken))
    assert reused.spec.ports[0].node_port == taken
    with pytest.raises(ApiException) as info:
        core.create_namespaced_service(ns, client.V1Service(
            metadata=client.V1ObjectMeta(name="ipclash"),
            spec=client.V1ServiceSpec(cluster_ip=made[1].spec.cluster_ip, ports=[client.V1ServicePort(port=80)])))
    assert info.value.status == 422 and "provided IP is already allocated" in info.value.body


def test_service_type_change_drops_and_releases_node_ports(server: Any, api_client: Any, ns: str) -> None:
    core = client.CoreV1Api(api_client)
    svc = core.create_namespaced_service(ns, client.V1Service(
        metadata=client.V1ObjectMeta(name="lb"),
        spec=client.V1ServiceSpec(type="LoadBalancer", ports=[client.V1ServicePort(port=80)])))
    node_port = svc.spec.ports[0].node_port
    server.kubectl("-n", ns, "patch", "svc", "lb", "-p", '{"spec":{"type":"ClusterIP"}}')
    plain = core.read_namespaced_service("lb", ns)
    assert plain.spec.type == "ClusterIP" and plain.spec.ports[0].node_port is None
    assert plain.spec.cluster_ip == svc.spec.cluster_ip
    assert plain.spec.allocate_load_balancer_node_ports is None
    again = core.create_namespaced_service(ns, client.V1Service(
        metadata=client.V1ObjectMeta(name="np"),
        spec=client.V1ServiceSpec(type="NodePort", ports=[client.V1ServicePort(port=80, node_port=node_port)])))
    assert again.spec.ports[0].node_port == node_port  # released by the type change
