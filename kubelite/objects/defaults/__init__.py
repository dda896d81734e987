"""Upstream's defaulting for every kind kubelite serves.

`apply_defaults` fills in, in place, what a real kube-apiserver would: the versioned defaulting
functions (`SetDefaults_*` and `+default` markers), what the admission plugins of a default
apiserver add to a new Pod (service account, priority, not-ready/unreachable tolerations) and the
initial status the registry strategies give (pod phase and QoS class, namespace phase). It only
fills what is missing, so it is safe to run on updates too. Server-owned metadata (uid,
timestamps, resourceVersion, generation) is left to the API server.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from kubelite.objects.defaults.kinds import (
    default_core_event,
    default_deployment,
    default_endpoint_slice,
    default_endpoints,
    default_namespace,
    default_node,
    default_replica_set,
    default_secret,
    default_service,
)
from kubelite.objects.defaults.pods import default_pod, qos_class
from kubelite.objects.defaults.podspec import default_pod_spec, default_pull_policy, image_tag
from kubelite.objects.registry import ResourceType

__all__ = ["apply_defaults", "default_pull_policy", "image_tag", "qos_class"]


def _pod(obj: dict[str, Any]) -> None:
    if isinstance(obj.get("spec"), dict):
        default_pod_spec(obj["spec"])
    default_pod(obj)


_DEFAULTERS: dict[tuple[str, str], Callable[[dict[str, Any]], None]] = {
    ("", "Endpoints"): default_endpoints,
    ("", "Event"): default_core_event,
    ("", "Namespace"): default_namespace,
    ("", "Node"): default_node,
    ("", "Pod"): _pod,
    ("", "Secret"): default_secret,
    ("", "Service"): default_service,
    ("apps", "Deployment"): default_deployment,
    ("apps", "ReplicaSet"): default_replica_set,
    ("discovery.k8s.io", "EndpointSlice"): default_endpoint_slice,
}


def apply_defaults(rt: ResourceType, obj: dict[str, Any]) -> None:
    """Mutate `obj` (a decoded object of kind `rt`) with upstream's defaults."""
    defaulter = _DEFAULTERS.get((rt.group, rt.kind))
    if defaulter is not None:
        defaulter(obj)
