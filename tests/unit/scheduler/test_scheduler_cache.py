"""Pod requests as upstream computes them, and the cache's assume / confirm / forget cycle."""

from __future__ import annotations

from typing import Any

from kubelite.scheduler.cache import Cache
from kubelite.scheduler.podinfo import PodInfo, pod_requests

Obj = dict[str, Any]
MI = 1024 * 1024


def container(cpu: str | None = None, memory: str | None = None, **extra: Any) -> Obj:
    requests = {k: v for k, v in (("cpu", cpu), ("memory", memory)) if v is not None}
    return {"name": "c", "resources": {"requests": requests}, **extra}


def test_containers_sum_and_init_containers_take_the_max() -> None:
    spec = {"containers": [container("100m", "64Mi"), container("250m", "64Mi")],
            "initContainers": [container("1", "32Mi"), container("200m", "256Mi")]}
    assert pod_requests(spec) == {"cpu": 1000, "memory": 256 * MI}


def test_sidecars_add_to_the_sum_and_to_later_init_containers() -> None:
    spec = {"containers": [container("500m")],
            "initContainers": [container("200m", restartPolicy="Always"), container("600m")]}
    # the app runs beside the sidecar (700m); the second init container ran beside it too (800m)
    assert pod_requests(spec) == {"cpu": 800}


def test_overhead_and_non_zero_defaults() -> None:
    spec = {"containers": [container(), container("50m")], "overhead": {"cpu": "10m", "memory": "1Mi"}}
    assert pod_requests(spec) == {"cpu": 60, "memory": MI}
    assert pod_requests(spec, non_zero=True) == {"cpu": 150, "memory": 400 * MI}


def test_quantities_round_up() -> None:
    assert pod_requests({"containers": [container("0.0001", "1.5")]}) == {"cpu": 1, "memory": 2}


def node(name: str) -> Obj:
    return {"metadata": {"name": name}, "status": {"allocatable": {"cpu": "2", "memory": "1Gi", "pods": "10"}}}


def pod(name: str, node_name: str = "", cpu: str = "500m") -> Obj:
    spec: Obj = {"containers": [container(cpu)]}
    if node_name:
        spec["nodeName"] = node_name
    return {"metadata": {"name": name, "namespace": "ns", "resourceVersion": "1"}, "spec": spec}


def test_assume_then_confirm_counts_once() -> None:
    cache = Cache()
    cache.set_node(node("n1"))
    cache.assume(PodInfo.of(pod("a")), "n1")
    assert cache.is_assumed("ns/a") and cache.nodes["n1"].requested == {"cpu": 500}
    bound = pod("a", "n1")
    cache.set_pod(bound)
    assert not cache.is_assumed("ns/a")
    assert cache.nodes["n1"].requested == {"cpu": 500} and len(cache.nodes["n1"].pods) == 1
    assert cache.pods["ns/a"].pod is bound


def test_forget_releases_an_assumed_pod_only() -> None:
    cache = Cache()
    cache.set_node(node("n1"))
    cache.assume(PodInfo.of(pod("a")), "n1")
    cache.forget("ns/a")
    assert cache.nodes["n1"].requested == {"cpu": 0} and not cache.nodes["n1"].pods
    cache.set_pod(pod("b", "n1"))
    cache.forget("ns/b")  # confirmed pods are not forgotten
    assert "ns/b" in cache.nodes["n1"].pods


def test_pod_on_unknown_node_waits_for_it_and_node_removal_keeps_pods() -> None:
    cache = Cache()
    cache.set_pod(pod("a", "later"))
    assert cache.order == []
    info = cache.set_node(node("later"))
    assert cache.order == [info] and "ns/a" in info.pods
    cache.remove_node("later")
    assert cache.order == [] and "later" in cache.nodes  # its pods still count until deleted
    cache.remove_pod("ns/a")
    assert "later" not in cache.nodes


def test_pod_moving_nodes_is_reaccounted() -> None:
    cache = Cache()
    cache.set_node(node("n1"))
    cache.set_node(node("n2"))
    cache.assume(PodInfo.of(pod("a")), "n1")
    cache.set_pod(pod("a", "n2"))  # the API says otherwise: believe the API
    assert not cache.nodes["n1"].pods and "ns/a" in cache.nodes["n2"].pods
    assert cache.nodes["n1"].requested == {"cpu": 0}
