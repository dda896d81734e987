"""Server-side printing: expected cells are what kube-apiserver's printers produce for the same objects."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from kubelite.objects.errors import BadRequest
from kubelite.objects.registry import REGISTRY, ResourceType
from kubelite.objects.tables import (
    human_duration,
    to_partial_object_metadata,
    to_partial_object_metadata_list,
    to_table,
)

NOW = datetime(2025, 6, 1, 12, 0, 0, tzinfo=UTC)
MS = 0.001
MINUTE, HOUR, DAY = 60, 3600, 86400
YEAR = 365 * DAY


def ago(seconds: float) -> str:
    return (NOW - timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%SZ")


def rt(plural: str, group: str = "") -> ResourceType:
    found = REGISTRY.by_path(group, "v1", plural)
    assert found is not None
    return found


def meta(name: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "namespace": "default", "uid": f"uid-{name}", "resourceVersion": "42",
            "creationTimestamp": ago(3 * DAY), **extra}


def cells(resource: ResourceType, obj: dict[str, Any]) -> list[Any]:
    table = to_table(resource, [obj], now=NOW)
    [row] = table["rows"]
    assert len(row["cells"]) == len(table["columnDefinitions"])
    assert all(isinstance(c, str | int) for c in row["cells"])
    return list(row["cells"])


def column_names(resource: ResourceType) -> list[tuple[str, int]]:
    return [(c["name"], c["priority"]) for c in to_table(resource, [], now=NOW)["columnDefinitions"]]


# --- human_duration: apimachinery's own TestHumanDuration / TestHumanDurationBoundaries -------------

@pytest.mark.parametrize(("seconds", "want"), [
    (1, "1s"), (70, "70s"), (190, "3m10s"), (70 * MINUTE, "70m"), (47 * HOUR, "47h"), (49 * HOUR, "2d1h"),
    ((8 * 24 + 2) * HOUR, "8d"), (367 * DAY, "367d"), ((365 * 2 * 24 + 25) * HOUR, "2y1d"),
    ((365 * 8 * 24 + 2) * HOUR, "8y"),
    (-2, "<invalid>"), (-2 + 1e-9, "0s"), (0, "0s"), (1 - MS, "0s"), (2 * MINUTE - MS, "119s"),
    (2 * MINUTE, "2m"), (2 * MINUTE + 1, "2m1s"), (10 * MINUTE - MS, "9m59s"), (10 * MINUTE, "10m"),
    (10 * MINUTE + 1, "10m"), (3 * HOUR - MS, "179m"), (3 * HOUR, "3h"), (3 * HOUR + MINUTE, "3h1m"),
    (8 * HOUR - MS, "7h59m"), (8 * HOUR, "8h"), (8 * HOUR + 59 * MINUTE, "8h"), (2 * DAY - MS, "47h"),
    (2 * DAY, "2d"), (2 * DAY + HOUR, "2d1h"), (8 * DAY - MS, "7d23h"), (8 * DAY, "8d"),
    (8 * DAY + 23 * HOUR, "8d"), (2 * YEAR - MS, "729d"), (2 * YEAR, "2y"), (2 * YEAR + 23 * HOUR, "2y"),
    (2 * YEAR + 23 * HOUR + 59 * MINUTE, "2y"), (2 * YEAR + DAY - MS, "2y"), (2 * YEAR + DAY, "2y1d"),
    (3 * YEAR, "3y"), (4 * YEAR, "4y"), (5 * YEAR, "5y"), (6 * YEAR, "6y"), (7 * YEAR, "7y"),
    (8 * YEAR - MS, "7y364d"), (8 * YEAR, "8y"), (8 * YEAR + 364 * DAY, "8y"), (9 * YEAR, "9y"),
])
def test_human_duration_matches_upstream(seconds: float, want: str) -> None:
    assert human_duration(seconds) == want


# --- pods ----------------------------------------------------------------------------------------

PODS = rt("pods")


def pod(name: str = "web", *, containers: int = 1, init: list[dict[str, Any]] | None = None,
        status: dict[str, Any] | None = None, **metadata: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {"containers": [{"name": f"c{i}", "image": "nginx"} for i in range(containers)]}
    if init is not None:
        spec["initContainers"] = init
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta(name, **metadata), "spec": spec,
            "status": status or {"phase": "Pending"}}


def running(name: str = "c0", *, ready: bool = True, restarts: int = 0, **extra: Any) -> dict[str, Any]:
    return {"name": name, "ready": ready, "restartCount": restarts,
            "state": {"running": {"startedAt": ago(HOUR)}}, **extra}


def test_pod_columns_match_upstream() -> None:
    assert column_names(PODS) == [("Name", 0), ("Ready", 0), ("Status", 0), ("Restarts", 0), ("Age", 0),
                                  ("IP", 1), ("Node", 1), ("Nominated Node", 1), ("Readiness Gates", 1)]
    columns = to_table(PODS, [], now=NOW)["columnDefinitions"]
    assert columns[0]["format"] == "name" and columns[0]["type"] == "string"
    assert columns[0]["description"].startswith("Name must be unique within a namespace.")
    assert columns[4]["description"].startswith("CreationTimestamp is a timestamp")


def test_running_pod_wide_cells() -> None:
    obj = pod(status={"phase": "Running", "podIP": "10.244.0.5", "podIPs": [{"ip": "10.244.0.5"}],
                      "conditions": [{"type": "Ready", "status": "True"}],
                      "containerStatuses": [running()]})
    obj["spec"]["nodeName"] = "node-1"
    assert cells(PODS, obj) == ["web", "1/1", "Running", "0", "3d", "10.244.0.5", "node-1", "<none>", "<none>"]


def test_pending_pod_without_status_details() -> None:
    assert cells(PODS, pod(containers=2)) == ["web", "0/2", "Pending", "0", "3d", "<none>", "<none>",
                                              "<none>", "<none>"]


def test_crash_loop_back_off_with_two_restarts() -> None:
    status = {"name": "c0", "ready": False, "restartCount": 2,
              "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 20s"}},
              "lastState": {"terminated": {"exitCode": 1, "reason": "Error", "finishedAt": ago(5 * MINUTE)}}}
    obj = pod("crashy", status={"phase": "Running", "containerStatuses": [status]})
    assert cells(PODS, obj)[:5] == ["crashy", "0/1", "CrashLoopBackOff", "2 (5m ago)", "3d"]


def test_restarts_without_finished_at_show_the_count_only() -> None:
    status = running(restarts=3, lastState={"terminated": {"exitCode": 137}})
    obj = pod(status={"phase": "Running", "containerStatuses": [status]})
    assert cells(PODS, obj)[3] == "3"


def test_terminating_pod() -> None:
    obj = pod(status={"phase": "Running", "containerStatuses": [running()]}, deletionTimestamp=ago(10))
    assert cells(PODS, obj)[1:3] == ["1/1", "Terminating"]


def test_terminating_terminal_pod_keeps_its_status() -> None:
    done = {"name": "c0", "ready": False, "restartCount": 0,
            "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}
    obj = pod(status={"phase": "Succeeded", "containerStatuses": [done]}, deletionTimestamp=ago(10))
    assert cells(PODS, obj)[1:3] == ["0/1", "Completed"]


def test_node_lost_pod_is_unknown() -> None:
    obj = pod(status={"phase": "Running", "reason": "NodeLost", "containerStatuses": [running()]},
              deletionTimestamp=ago(10))
    assert cells(PODS, obj)[2] == "Unknown"


def test_init_container_progress() -> None:
    init = [{"name": "migrate", "image": "busybox"}, {"name": "warm", "image": "busybox"}]
    statuses = [
        {"name": "migrate", "ready": False, "restartCount": 0,
         "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}},
        {"name": "warm", "ready": False, "restartCount": 0, "state": {"running": {"startedAt": ago(30)}}},
    ]
    app = {"name": "c0", "ready": False, "restartCount": 0, "state": {"waiting": {"reason": "PodInitializing"}}}
    obj = pod(init=init, status={"phase": "Pending", "initContainerStatuses": statuses, "containerStatuses": [app],
                                 "conditions": [{"type": "Initialized", "status": "False"}]})
    assert cells(PODS, obj)[1:4] == ["0/1", "Init:1/2", "0"]


@pytest.mark.parametrize(("state", "want"), [
    ({"terminated": {"exitCode": 1, "reason": "Error"}}, "Init:Error"),
    ({"terminated": {"exitCode": 2}}, "Init:ExitCode:2"),
    ({"terminated": {"exitCode": 137, "signal": 9}}, "Init:Signal:9"),
    ({"waiting": {"reason": "CrashLoopBackOff"}}, "Init:CrashLoopBackOff"),
    ({"waiting": {"reason": "PodInitializing"}}, "Init:0/1"),
    ({"waiting": {}}, "Init:0/1"),
])
def test_init_container_failures(state: dict[str, Any], want: str) -> None:
    status = {"name": "setup", "ready": False, "restartCount": 4, "state": state,
              "lastState": {"terminated": {"exitCode": 1, "finishedAt": ago(2 * MINUTE)}}}
    obj = pod(init=[{"name": "setup", "image": "busybox"}],
              status={"phase": "Pending", "initContainerStatuses": [status]})
    assert cells(PODS, obj)[1:4] == ["0/1", want, "4 (2m ago)"]


def test_sidecar_counts_towards_ready_and_restarts() -> None:
    init = [{"name": "proxy", "image": "envoy", "restartPolicy": "Always"}]
    sidecar = running("proxy", restarts=1, started=True,
                      lastState={"terminated": {"exitCode": 1, "finishedAt": ago(10 * MINUTE)}})
    obj = pod(init=init, status={
        "phase": "Running", "initContainerStatuses": [sidecar],
        "containerStatuses": [running("c0", restarts=2,
                                      lastState={"terminated": {"exitCode": 1, "finishedAt": ago(20 * MINUTE)}})],
        "conditions": [{"type": "Initialized", "status": "True"}, {"type": "Ready", "status": "True"}]})
    assert cells(PODS, obj)[1:4] == ["2/2", "Running", "3 (10m ago)"]


def test_sidecar_not_started_blocks_initialization() -> None:
    init = [{"name": "proxy", "image": "envoy", "restartPolicy": "Always"}]
    sidecar = {"name": "proxy", "ready": False, "restartCount": 0, "started": False,
               "state": {"running": {"startedAt": ago(5)}}}
    obj = pod(init=init, status={"phase": "Pending", "initContainerStatuses": [sidecar]})
    assert cells(PODS, obj)[1:3] == ["0/2", "Init:0/1"]


@pytest.mark.parametrize(("ready_condition", "want"), [("True", "Running"), ("False", "NotReady")])
def test_completed_container_next_to_running_one(ready_condition: str, want: str) -> None:
    done = {"name": "c1", "ready": False, "restartCount": 0,
            "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}
    obj = pod(containers=2, status={"phase": "Running", "containerStatuses": [running("c0"), done],
                                    "conditions": [{"type": "Ready", "status": ready_condition}]})
    assert cells(PODS, obj)[1:3] == ["1/2", want]


@pytest.mark.parametrize(("terminated", "want"), [
    ({"exitCode": 137, "signal": 9}, "Signal:9"), ({"exitCode": 3}, "ExitCode:3"),
    ({"exitCode": 137, "reason": "OOMKilled"}, "OOMKilled"),
])
def test_terminated_container_reason(terminated: dict[str, Any], want: str) -> None:
    status = {"name": "c0", "ready": False, "restartCount": 0, "state": {"terminated": terminated}}
    assert cells(PODS, pod(status={"phase": "Failed", "containerStatuses": [status]}))[2] == want


def test_status_reason_and_scheduling_gates() -> None:
    evicted = pod(status={"phase": "Failed", "reason": "Evicted"})
    gated = pod(status={"phase": "Pending", "conditions": [
        {"type": "PodScheduled", "status": "False", "reason": "SchedulingGated"}]})
    assert cells(PODS, evicted)[2] == "Evicted"
    assert cells(PODS, gated)[2] == "SchedulingGated"


def test_readiness_gates_and_nominated_node() -> None:
    obj = pod(status={"phase": "Pending", "nominatedNodeName": "node-2", "conditions": [
        {"type": "example.com/lb", "status": "True"}, {"type": "example.com/dns", "status": "False"}]})
    obj["spec"]["readinessGates"] = [{"conditionType": "example.com/lb"}, {"conditionType": "example.com/dns"},
                                     {"conditionType": "example.com/absent"}]
    assert cells(PODS, obj)[5:] == ["<none>", "<none>", "node-2", "1/3"]


def test_finished_pods_carry_row_conditions() -> None:
    done = {"name": "c0", "ready": False, "restartCount": 0,
            "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}
    table = to_table(PODS, [pod(status={"phase": "Succeeded", "containerStatuses": [done]}),
                            pod(status={"phase": "Running"})], now=NOW)
    assert table["rows"][0]["cells"][2] == "Completed"
    assert table["rows"][0]["conditions"] == [{"type": "Completed", "status": "True", "reason": "Succeeded",
                                               "message": "The pod has completed successfully."}]
    assert "conditions" not in table["rows"][1]


# --- nodes ---------------------------------------------------------------------------------------

NODES = rt("nodes")


def node(name: str, *, labels: dict[str, str], conditions: list[dict[str, str]], **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Node", "metadata": meta(name, labels=labels), "spec": spec,
            "status": {"conditions": conditions,
                       "addresses": [{"type": "Hostname", "address": name},
                                     {"type": "InternalIP", "address": "192.168.1.10"}],
                       "nodeInfo": {"kubeletVersion": "v1.37.0", "osImage": "Debian GNU/Linux 12 (bookworm)",
                                    "kernelVersion": "6.1.0-18-amd64", "architecture": "amd64",
                                    "containerRuntimeVersion": "containerd://1.7.13"}}}


def test_node_columns_match_upstream() -> None:
    assert column_names(NODES) == [("Name", 0), ("Status", 0), ("Roles", 0), ("Age", 0), ("Version", 0),
                                   ("Internal-IP", 1), ("External-IP", 1), ("OS-Image", 1),
                                   ("Kernel-Version", 1), ("Container-Runtime", 1)]


def test_not_ready_cordoned_control_plane_node() -> None:
    obj = node("cp-1", labels={"node-role.kubernetes.io/control-plane": "", "kubernetes.io/os": "linux"},
               conditions=[{"type": "MemoryPressure", "status": "False"}, {"type": "Ready", "status": "False"}],
               unschedulable=True)
    assert cells(NODES, obj) == ["cp-1", "NotReady,SchedulingDisabled", "control-plane", "3d", "v1.37.0",
                                 "192.168.1.10", "<none>", "Debian GNU/Linux 12 (bookworm)", "6.1.0-18-amd64 (amd64)",
                                 "containerd://1.7.13"]


def test_ready_node_roles_from_both_label_styles() -> None:
    obj = node("w-1", labels={"kubernetes.io/role": "worker", "node-role.kubernetes.io/infra": "true",
                              "node-role.kubernetes.io/worker": "", "node-role.kubernetes.io/": "x"},
               conditions=[{"type": "Ready", "status": "True"}])
    assert cells(NODES, obj)[1:3] == ["Ready", "infra,worker"]


def test_node_without_conditions_or_info() -> None:
    obj = {"metadata": {"name": "bare", "labels": {"kubernetes.io/role": ""}}, "status": {"conditions": [
        {"type": "Ready", "status": "Unknown"}]}}
    assert cells(NODES, obj) == ["bare", "NotReady", "<none>", "<unknown>", "", "<none>", "<none>",
                                 "<unknown>", "<unknown>", "<unknown>"]
    assert cells(NODES, {"metadata": {"name": "new"}})[1] == "Unknown"


# --- services, endpoints, endpoint slices -------------------------------------------------------

SERVICES = rt("services")


def service(svc_type: str | None, **spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"apiVersion": "v1", "kind": "Service", "metadata": meta("svc"), "spec": spec}
    if svc_type is not None:
        body["spec"]["type"] = svc_type
    return body


def test_service_columns_match_upstream() -> None:
    assert column_names(SERVICES) == [("Name", 0), ("Type", 0), ("Cluster-IP", 0), ("External-IP", 0),
                                      ("Port(s)", 0), ("Age", 0), ("Selector", 1)]


def test_cluster_ip_service() -> None:
    obj = service("ClusterIP", clusterIP="10.96.0.10", clusterIPs=["10.96.0.10"], selector={"app": "web", "a": "b"},
                  ports=[{"port": 80, "protocol": "TCP", "targetPort": 8080}, {"port": 53, "protocol": "UDP"}])
    assert cells(SERVICES, obj) == ["svc", "ClusterIP", "10.96.0.10", "<none>", "80/TCP,53/UDP", "3d",
                                    "a=b,app=web"]


def test_headless_service_without_ports_or_selector() -> None:
    obj = service(None, clusterIP="None")
    assert cells(SERVICES, obj) == ["svc", "ClusterIP", "None", "<none>", "<none>", "3d", "<none>"]


def test_node_port_service_with_external_ips() -> None:
    obj = service("NodePort", clusterIPs=["10.96.3.4"], externalIPs=["198.51.100.7"],
                  ports=[{"port": 80, "nodePort": 30080, "protocol": "TCP"}, {"port": 443, "nodePort": 30443}])
    assert cells(SERVICES, obj)[1:5] == ["NodePort", "10.96.3.4", "198.51.100.7", "80:30080/TCP,443:30443/TCP"]


def test_load_balancer_pending_and_with_ingress() -> None:
    pending = service("LoadBalancer", clusterIPs=["10.96.0.20"], ports=[{"port": 80, "nodePort": 31000,
                                                                         "protocol": "TCP"}])
    assert cells(SERVICES, pending)[1:5] == ["LoadBalancer", "10.96.0.20", "<pending>", "80:31000/TCP"]
    ready = service("LoadBalancer", clusterIPs=["10.96.0.20"], externalIPs=["198.51.100.9"],
                    ports=[{"port": 80, "nodePort": 31000, "protocol": "TCP"}])
    ready["status"] = {"loadBalancer": {"ingress": [{"hostname": "a-very-long-name.elb.example.com"},
                                                    {"ip": "203.0.113.10"}, {"ip": "203.0.113.10"}]}}
    assert cells(SERVICES, ready)[3] == "203.0.113.10,a-very-long-name.elb.example.com,198.51.100.9"


def test_external_name_service() -> None:
    obj = service("ExternalName", externalName="db.example.com")
    assert cells(SERVICES, obj)[1:5] == ["ExternalName", "<none>", "db.example.com", "<none>"]


def test_endpoints_with_five_addresses() -> None:
    subset = {"addresses": [{"ip": f"10.244.0.{i}"} for i in range(1, 6)], "ports": [{"port": 8080}]}
    obj = {"metadata": meta("web"), "subsets": [subset]}
    assert cells(rt("endpoints"), obj) == ["web", "10.244.0.1:8080,10.244.0.2:8080,10.244.0.3:8080 + 2 more...",
                                           "3d"]


def test_endpoints_edge_cases() -> None:
    endpoints = rt("endpoints")
    assert cells(endpoints, {"metadata": meta("none")})[1] == "<none>"
    headless = {"metadata": meta("h"), "subsets": [{"addresses": [{"ip": "10.0.0.1"}, {"ip": "fd00::1"}]}]}
    assert cells(endpoints, headless)[1] == "10.0.0.1,fd00::1"
    two_ports = {"metadata": meta("p"), "subsets": [{"addresses": [{"ip": "fd00::1"}, {"ip": "10.0.0.2"}],
                                                     "ports": [{"port": 80}, {"port": 443}]}]}
    assert cells(endpoints, two_ports)[1] == "[fd00::1]:80,10.0.0.2:80,[fd00::1]:443 + 1 more..."
    not_ready = {"metadata": meta("n"), "subsets": [{"notReadyAddresses": [{"ip": "10.0.0.3"}],
                                                     "ports": [{"port": 80}]}]}
    assert cells(endpoints, not_ready)[1] == ""


def test_endpoint_slices() -> None:
    slices = rt("endpointslices", "discovery.k8s.io")
    assert column_names(slices) == [("Name", 0), ("AddressType", 0), ("Ports", 0), ("Endpoints", 0), ("Age", 0)]
    obj = {"metadata": meta("web-abc12"), "addressType": "IPv4",
           "ports": [{"name": "http", "port": 80}, {"name": "named"}, {}, {"port": 9090}],
           "endpoints": [{"addresses": ["10.0.0.1"]}, {"addresses": ["10.0.0.2", "10.0.0.3"]},
                         {"addresses": ["10.0.0.4"]}]}
    assert cells(slices, obj) == ["web-abc12", "IPv4", "80,named,* + 1 more...",
                                  "10.0.0.1,10.0.0.2,10.0.0.3 + 1 more...", "3d"]
    assert cells(slices, {"metadata": meta("empty"), "addressType": "IPv6"})[2:4] == ["<unset>", "<unset>"]


# --- events --------------------------------------------------------------------------------------

def test_core_event() -> None:
    events = rt("events")
    assert column_names(events) == [("Last Seen", 0), ("Type", 0), ("Reason", 0), ("Object", 0),
                                    ("Subobject", 1), ("Source", 1), ("Message", 0), ("First Seen", 1),
                                    ("Count", 1), ("Name", 1)]
    assert to_table(events, [], now=NOW)["columnDefinitions"][-1]["format"] == "name"
    obj = {"metadata": meta("crashy.17f3"), "type": "Warning", "reason": "BackOff",
           "involvedObject": {"kind": "Pod", "name": "crashy", "fieldPath": "spec.containers{app}"},
           "source": {"component": "kubelet", "host": "node-1"}, "message": " Back-off restarting failed container\n",
           "firstTimestamp": ago(HOUR), "lastTimestamp": ago(5 * MINUTE), "count": 3}
    assert cells(events, obj) == ["5m", "Warning", "BackOff", "pod/crashy", "spec.containers{app}",
                                  "kubelet, node-1", "Back-off restarting failed container", "60m", 3, "crashy.17f3"]


def test_core_event_from_new_api_fields() -> None:
    obj = {"metadata": meta("web.1"), "type": "Normal", "reason": "Scheduled", "involvedObject": {"kind": "Node"},
           "eventTime": (NOW - timedelta(seconds=90)).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
           "reportingComponent": "default-scheduler", "message": "ok"}
    assert cells(rt("events"), obj) == ["90s", "Normal", "Scheduled", "node", "", "default-scheduler", "ok",
                                        "90s", 1, "web.1"]


def test_events_k8s_io_event_prints_like_core() -> None:
    events_v1 = rt("events", "events.k8s.io")
    assert column_names(events_v1) == column_names(rt("events"))
    obj = {"apiVersion": "events.k8s.io/v1", "kind": "Event", "metadata": meta("web.2"),
           "eventTime": "2025-06-01T11:58:00.000000Z", "series": {"count": 4, "lastObservedTime":
                                                                  "2025-06-01T11:59:30.123456Z"},
           "reportingController": "default-scheduler", "reportingInstance": "default-scheduler-cp-1",
           "action": "Scheduling", "reason": "FailedScheduling", "type": "Warning",
           "regarding": {"kind": "Pod", "namespace": "default", "name": "web"}, "note": "0/1 nodes are available"}
    assert cells(events_v1, obj) == ["29s", "Warning", "FailedScheduling", "pod/web", "",
                                     "default-scheduler, default-scheduler-cp-1", "0/1 nodes are available",
                                     "2m", 4, "web.2"]
    legacy = {"metadata": meta("web.3"), "regarding": {"kind": "Pod", "name": "web"}, "note": "n",
              "deprecatedSource": {"component": "kubelet"}, "deprecatedFirstTimestamp": ago(DAY),
              "deprecatedLastTimestamp": ago(HOUR), "deprecatedCount": 7}
    assert cells(events_v1, legacy) == ["60m", "", "", "pod/web", "", "kubelet", "n", "24h", 7, "web.3"]


# --- simple kinds --------------------------------------------------------------------------------

def test_namespaces_configmaps_secrets_serviceaccounts_leases() -> None:
    assert cells(rt("namespaces"), {"metadata": meta("default"), "status": {"phase": "Active"}}) == [
        "default", "Active", "3d"]
    assert cells(rt("namespaces"), {"metadata": meta("old"), "status": {"phase": "Terminating"}})[1] == "Terminating"
    assert cells(rt("configmaps"), {"metadata": meta("cfg"), "data": {"a": "1", "b": "2"},
                                    "binaryData": {"c": "AA=="}}) == ["cfg", 3, "3d"]
    assert cells(rt("configmaps"), {"metadata": meta("empty")}) == ["empty", 0, "3d"]
    assert cells(rt("secrets"), {"metadata": meta("tls"), "type": "kubernetes.io/tls",
                                 "data": {"tls.crt": "", "tls.key": ""}}) == ["tls", "kubernetes.io/tls", 2, "3d"]
    # The SECRETS count column was removed upstream in 1.35 (kubernetes#117160).
    assert cells(rt("serviceaccounts"), {"metadata": meta("b"), "secrets": [{"name": "t"}]}) == ["b", "3d"]
    leases = rt("leases", "coordination.k8s.io")
    assert cells(leases, {"metadata": meta("kube-scheduler"), "spec": {"holderIdentity": "cp-1_1234"}}) == [
        "kube-scheduler", "cp-1_1234", "3d"]
    assert cells(leases, {"metadata": meta("free"), "spec": {}}) == ["free", "", "3d"]
    assert column_names(rt("secrets")) == [("Name", 0), ("Type", 0), ("Data", 0), ("Age", 0)]
    assert column_names(rt("serviceaccounts")) == [("Name", 0), ("Age", 0)]


def test_default_table_for_kinds_without_printer() -> None:
    bindings = rt("bindings")
    assert column_names(bindings) == [("Name", 0), ("Age", 0)]
    assert cells(bindings, {"metadata": {"name": "b"}}) == ["b", "<unknown>"]


# --- deployments, replica sets -------------------------------------------------------------------

def workload(kind: str, name: str, replicas: int | None, status: dict[str, int],
             selector: dict[str, Any] | None) -> dict[str, Any]:
    spec: dict[str, Any] = {"template": {"spec": {"containers": [
        {"name": "nginx", "image": "nginx:1.27"}, {"name": "log", "image": "busybox"}]}}}
    if replicas is not None:
        spec["replicas"] = replicas
    if selector is not None:
        spec["selector"] = selector
    return {"apiVersion": "apps/v1", "kind": kind, "metadata": meta(name), "spec": spec, "status": status}


def test_deployment_two_of_three() -> None:
    deployments = rt("deployments", "apps")
    assert column_names(deployments) == [("Name", 0), ("Ready", 0), ("Up-to-date", 0), ("Available", 0),
                                         ("Age", 0), ("Containers", 1), ("Images", 1), ("Selector", 1)]
    selector = {"matchLabels": {"app": "web"},
                "matchExpressions": [{"key": "tier", "operator": "In", "values": ["fe", "be"]},
                                     {"key": "canary", "operator": "DoesNotExist"}]}
    obj = workload("Deployment", "web", 3, {"replicas": 3, "updatedReplicas": 3, "readyReplicas": 2,
                                            "availableReplicas": 2}, selector)
    assert cells(deployments, obj) == ["web", "2/3", 3, 2, "3d", "nginx,log", "nginx:1.27,busybox",
                                       "app=web,!canary,tier in (be,fe)"]


def test_deployment_defaults_and_bad_selector() -> None:
    deployments = rt("deployments", "apps")
    assert cells(deployments, workload("Deployment", "d", None, {}, None))[1:4] == ["0/1", 0, 0]
    assert cells(deployments, workload("Deployment", "d", 0, {}, {}))[-1] == ""
    bad = {"matchExpressions": [{"key": "a", "operator": "Exists", "values": ["x"]}]}
    assert cells(deployments, workload("Deployment", "d", 1, {}, bad))[-1] == "<invalid>"


def test_replica_set() -> None:
    replica_sets = rt("replicasets", "apps")
    assert column_names(replica_sets) == [("Name", 0), ("Desired", 0), ("Current", 0), ("Ready", 0), ("Age", 0),
                                          ("Containers", 1), ("Images", 1), ("Selector", 1)]
    selector = {"matchLabels": {"pod-template-hash": "5d8f", "app": "web"}}
    obj = workload("ReplicaSet", "web-5d8f", 3, {"replicas": 3, "readyReplicas": 2}, selector)
    assert cells(replica_sets, obj) == ["web-5d8f", 3, 3, 2, "3d", "nginx,log", "nginx:1.27,busybox",
                                        "app=web,pod-template-hash=5d8f"]
    assert cells(replica_sets, workload("ReplicaSet", "e", 1, {}, {"matchLabels": {}}))[-1] == "<none>"
    bad = {"matchExpressions": [{"key": "a", "operator": "Near"}]}
    assert cells(replica_sets, workload("ReplicaSet", "e", 1, {}, bad))[-1] == "<error>"


# --- table envelope, includeObject, partial metadata ---------------------------------------------

def test_table_envelope_and_include_object() -> None:
    obj = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta("cfg", labels={"a": "b"}), "data": {}}
    table = to_table(rt("configmaps"), [obj], resource_version="99", continue_token="tok", now=NOW)
    assert table["kind"] == "Table" and table["apiVersion"] == "meta.k8s.io/v1"
    assert table["metadata"] == {"resourceVersion": "99", "continue": "tok"}
    assert table["columnDefinitions"][1] == {"name": "Data", "type": "string", "format": "",
                                             "description": "Data contains the configuration data.", "priority": 0}
    assert table["rows"][0]["object"] == {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
                                          "metadata": obj["metadata"]}
    full = to_table(rt("configmaps"), [obj], include_object="Object", now=NOW)
    assert full["rows"][0]["object"] == obj
    assert full["metadata"] == {}
    assert "object" not in to_table(rt("configmaps"), [obj], include_object="None", now=NOW)["rows"][0]
    assert to_table(rt("configmaps"), [obj], include_object="", now=NOW)["rows"][0]["object"]["kind"] == (
        "PartialObjectMetadata")
    with pytest.raises(BadRequest, match='unrecognized includeObject value: "Everything"'):
        to_table(rt("configmaps"), [obj], include_object="Everything")


def test_age_uses_the_clock_when_now_is_not_given() -> None:
    fresh = {"metadata": {"name": "x", "creationTimestamp": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")}}
    assert to_table(rt("configmaps"), [fresh])["rows"][0]["cells"][2] in ("0s", "1s", "2s")
    naive_now = NOW.replace(tzinfo=None)
    assert to_table(rt("configmaps"), [{"metadata": meta("y")}], now=naive_now)["rows"][0]["cells"][2] == "3d"


def test_partial_object_metadata() -> None:
    obj = {"apiVersion": "v1", "kind": "Secret", "metadata": meta("s"), "data": {"k": "dg=="}}
    assert to_partial_object_metadata(obj) == {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
                                               "metadata": obj["metadata"]}
    listed = to_partial_object_metadata_list([obj], resource_version="7", continue_token="c")
    assert listed == {"kind": "PartialObjectMetadataList", "apiVersion": "meta.k8s.io/v1",
                      "metadata": {"resourceVersion": "7", "continue": "c"},
                      "items": [to_partial_object_metadata(obj)]}


def test_every_registered_kind_prints_minimal_objects() -> None:
    for resource in REGISTRY.resources:
        table = to_table(resource, [{"metadata": {"name": "x"}}, {}], now=NOW)
        assert table["columnDefinitions"][0]["name"] in ("Name", "Last Seen")
        for row in table["rows"]:
            assert len(row["cells"]) == len(table["columnDefinitions"])
            assert all(isinstance(cell, str | int) for cell in row["cells"]), (resource.plural, row)
