"""The Node a kubelet registers and the status it reports (pure builders)."""

from __future__ import annotations

from kubelite.agent import nodestatus
from kubelite.agent.config import NodeConfig, node_ip, node_ip_for_name
from kubelite.agent.nodestatus import Readiness

CFG = NodeConfig(name="n1", internal_ip="198.19.128.16", cpu="8", memory="16Gi", ephemeral_storage="100Gi",
                 arch="arm64", os_image="Test OS", kernel_version="6.1.0", labels=(("role", "x"),))
T0, T1 = "2025-01-01T00:00:00Z", "2025-01-01T00:05:00Z"


def node() -> dict:
    return nodestatus.node_object(CFG, "fake://1.0", Readiness(), now=T0)


def by_type(status: dict) -> dict[str, dict]:
    return {c["type"]: c for c in status["conditions"]}


def test_registered_node_carries_identity_resources_and_ready_conditions() -> None:
    obj = node()
    meta, status = obj["metadata"], obj["status"]
    assert meta["labels"] == {"kubernetes.io/hostname": "n1", "kubernetes.io/os": "linux",
                              "kubernetes.io/arch": "arm64", "beta.kubernetes.io/os": "linux",
                              "beta.kubernetes.io/arch": "arm64", "role": "x"}
    assert status["capacity"] == {"cpu": "8", "memory": "16777216Ki", "pods": "110",
                                  "ephemeral-storage": "104857600Ki", "hugepages-1Gi": "0", "hugepages-2Mi": "0"}
    assert status["allocatable"]["memory"] == f"{16777216 - 102400}Ki"  # less the 100Mi eviction threshold
    assert status["allocatable"]["ephemeral-storage"] == str(int(100 * 2**30 * 0.9))
    assert status["addresses"] == [{"type": "InternalIP", "address": "198.19.128.16"},
                                   {"type": "Hostname", "address": "n1"}]
    info = status["nodeInfo"]
    assert (info["kubeletVersion"], info["containerRuntimeVersion"], info["architecture"], info["osImage"],
            info["kernelVersion"], info["operatingSystem"]) == ("v1.37.0", "fake://1.0", "arm64", "Test OS",
                                                                "6.1.0", "linux")
    assert [c["type"] for c in status["conditions"]] == ["MemoryPressure", "DiskPressure", "PIDPressure", "Ready"]
    ready = by_type(status)["Ready"]
    assert (ready["status"], ready["reason"], ready["message"]) == ("True", "KubeletReady",
                                                                    "kubelet is posting ready status")
    memory = by_type(status)["MemoryPressure"]
    assert (memory["status"], memory["reason"], memory["message"]) == (
        "False", "KubeletHasSufficientMemory", "kubelet has sufficient memory available")
    assert by_type(status)["PIDPressure"]["reason"] == "KubeletHasSufficientPID"
    assert by_type(status)["DiskPressure"]["reason"] == "KubeletHasNoDiskPressure"


def test_conditions_keep_transition_times_while_their_status_holds() -> None:
    current = node()["status"]
    again = nodestatus.node_status(CFG, "fake://1.0", Readiness(), current=current, now=T1)
    ready = by_type(again)["Ready"]
    assert (ready["lastTransitionTime"], ready["lastHeartbeatTime"]) == (T0, T1)
    down = nodestatus.node_status(CFG, "fake://1.0", Readiness(network_ready=False, message="no CNI"),
                                  current=current, now=T1)
    ready = by_type(down)["Ready"]
    assert (ready["status"], ready["reason"], ready["message"], ready["lastTransitionTime"]) == (
        "False", "KubeletNotReady", "no CNI", T1)


def test_status_changed_ignores_heartbeats_and_fields_others_own() -> None:
    current = node()["status"]
    later = nodestatus.node_status(CFG, "fake://1.0", Readiness(), current=current, now=T1)
    assert not nodestatus.status_changed(later, current)
    assert not nodestatus.status_changed(later, {**current, "images": [{"names": ["x"]}],
                                                 "conditions": [*current["conditions"],
                                                                {"type": "NetworkUnavailable", "status": "False"}]})
    unknown = [dict(c, status="Unknown", reason="NodeStatusUnknown") if c["type"] == "Ready" else c
               for c in current["conditions"]]
    assert nodestatus.status_changed(later, {**current, "conditions": unknown})
    assert nodestatus.status_changed(later, None)


def test_fake_node_addresses() -> None:
    assert node_ip(0) == "198.19.128.16" and node_ip(3) == "198.19.128.19"
    assert node_ip(300) == "198.19.129.60"
    assert node_ip_for_name("a") == node_ip_for_name("a") != node_ip_for_name("b")
