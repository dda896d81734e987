"""Turn a request path into what it addresses (upstream's RequestInfoFactory, for our registry).

    /api/v1/namespaces/default/pods/web/log  ->  pods in "default", name "web", subresource "log"
    /apis/apps/v1/deployments                ->  deployments in all namespaces
    /api/v1/namespaces/default               ->  the namespace "default" (a cluster-scoped object)

Parsing is pure: the registry decides whether the resource exists.
"""

from __future__ import annotations

from dataclasses import dataclass

from kubelite.objects.errors import NotFound
from kubelite.objects.registry import Registry, ResourceType

# /api/v1/namespaces/<name>/status and /finalize address the Namespace itself, not a resource in it
NAMESPACE_SUBRESOURCES = ("status", "finalize")


@dataclass(frozen=True)
class ResourceRequest:
    rt: ResourceType
    namespace: str | None  # None: all namespaces (lists/watches) or a cluster-scoped resource
    name: str | None
    subresource: str | None


def parse_resource_path(registry: Registry, path: str) -> ResourceRequest | None:
    """The resource a path addresses, None for non-resource paths, NotFound for unknown resources."""
    parts = [p for p in path.split("/") if p]
    if len(parts) >= 2 and parts[0] == "api":
        group, version, rest = "", parts[1], parts[2:]
    elif len(parts) >= 3 and parts[0] == "apis":
        group, version, rest = parts[1], parts[2], parts[3:]
    else:
        return None
    if not rest:
        return None
    return _resolve(registry, group, version, rest, path)


def _resolve(registry: Registry, group: str, version: str, rest: list[str], path: str) -> ResourceRequest:
    namespace: str | None = None
    # "namespaces/<ns>/<plural>..." addresses a namespaced resource; "namespaces[/<name>[/sub]]"
    # addresses the Namespace objects themselves.
    if rest[0] == "namespaces" and len(rest) >= 3 and not (len(rest) == 3 and rest[2] in NAMESPACE_SUBRESOURCES):
        namespace, rest = rest[1], rest[2:]
    rt = registry.by_path(group, version, rest[0])
    if rt is None:
        raise NotFound(f"the server could not find the requested resource ({path})",
                       details={"group": group, "kind": rest[0]})
    if namespace is not None and not rt.namespaced:
        raise NotFound(f"the server could not find the requested resource ({path})")
    name = rest[1] if len(rest) > 1 else None
    sub = rest[2] if len(rest) > 2 else None
    if len(rest) > 3 or (sub is not None and rt.subresource(sub) is None):
        raise NotFound(f"the server could not find the requested resource ({path})")
    return ResourceRequest(rt, namespace, name, sub)
