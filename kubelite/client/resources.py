"""The resource types components use, looked up once from the registry."""

from __future__ import annotations

from kubelite.objects.registry import REGISTRY, ResourceType


def _rt(group: str, version: str, plural: str) -> ResourceType:
    rt = REGISTRY.by_path(group, version, plural)
    assert rt is not None, plural
    return rt


PODS = _rt("", "v1", "pods")
NODES = _rt("", "v1", "nodes")
NAMESPACES = _rt("", "v1", "namespaces")
SERVICES = _rt("", "v1", "services")
ENDPOINTS = _rt("", "v1", "endpoints")
EVENTS = _rt("", "v1", "events")
CONFIGMAPS = _rt("", "v1", "configmaps")
SECRETS = _rt("", "v1", "secrets")
SERVICEACCOUNTS = _rt("", "v1", "serviceaccounts")
DEPLOYMENTS = _rt("apps", "v1", "deployments")
REPLICASETS = _rt("apps", "v1", "replicasets")
LEASES = _rt("coordination.k8s.io", "v1", "leases")
ENDPOINTSLICES = _rt("discovery.k8s.io", "v1", "endpointslices")
EVENTS_V1 = _rt("events.k8s.io", "v1", "events")
