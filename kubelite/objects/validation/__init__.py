"""Upstream validation for every kind kubelite serves.

`validate` returns the causes upstream's kube-apiserver would put in a 422 (field paths, types and
messages as upstream words them), for a create (`old` is None) or an update. It expects the object
as the registry holds it just before validating: defaults applied, metadata.namespace set from the
URL, generated names filled in. `check_schema` reports what upstream's strict decoder would reject
before validation even runs: unknown fields and values of the wrong JSON type.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from kubelite.objects.errors import Cause
from kubelite.objects.registry import ResourceType
from kubelite.objects.validation.access import m
from kubelite.objects.validation.apps import validate_deployment, validate_replica_set
from kubelite.objects.validation.coordination import validate_lease
from kubelite.objects.validation.core import (
    validate_binding,
    validate_config_map,
    validate_endpoints,
    validate_namespace,
    validate_node,
    validate_secret,
    validate_service_account,
)
from kubelite.objects.validation.discovery import validate_endpoint_slice
from kubelite.objects.validation.events import validate_core_event, validate_events_v1_event
from kubelite.objects.validation.meta import validate_generic_meta
from kubelite.objects.validation.pod import validate_pod
from kubelite.objects.validation.schema import SchemaReport, check_schema
from kubelite.objects.validation.service import validate_service

__all__ = ["SchemaReport", "check_schema", "validate"]

Validator = Callable[[dict[str, Any], dict[str, Any] | None], list[Cause]]

_VALIDATORS: dict[tuple[str, str], Validator] = {
    ("", "Binding"): validate_binding,
    ("", "ConfigMap"): validate_config_map,
    ("", "Endpoints"): validate_endpoints,
    ("", "Event"): validate_core_event,
    ("", "Namespace"): validate_namespace,
    ("", "Node"): validate_node,
    ("", "Pod"): validate_pod,
    ("", "Secret"): validate_secret,
    ("", "Service"): validate_service,
    ("", "ServiceAccount"): validate_service_account,
    ("apps", "Deployment"): validate_deployment,
    ("apps", "ReplicaSet"): validate_replica_set,
    ("coordination.k8s.io", "Lease"): validate_lease,
    ("discovery.k8s.io", "EndpointSlice"): validate_endpoint_slice,
    ("events.k8s.io", "Event"): validate_events_v1_event,
}

# kinds whose metadata the registry checks but whose own validation does not look at it
_NO_GENERIC_META = {("", "Binding")}


def validate(rt: ResourceType, obj: dict[str, Any], *, old: dict[str, Any] | None = None) -> list[Cause]:
    """Create validation when `old` is None, update validation (immutability included) otherwise."""
    validator = _VALIDATORS.get((rt.group, rt.kind))
    causes = validator(obj, old) if validator is not None else []
    if causes or old is not None or (rt.group, rt.kind) in _NO_GENERIC_META:
        return causes
    # like upstream's registry: the generic metadata check runs only once the kind's passed
    return validate_generic_meta(m(obj, "metadata"), rt.namespaced)
