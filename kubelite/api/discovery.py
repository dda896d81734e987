"""Discovery documents, generated from the registry.

Both forms kubectl understands: aggregated (`apidiscovery.k8s.io/v2` APIGroupDiscoveryList,
chosen when the client's Accept asks for it; client-go picks its parser from the response
Content-Type alone, so that header must be exact) and legacy (APIVersions, APIGroupList,
APIResourceList).
"""

from __future__ import annotations

from typing import Any

from kubelite.objects.registry import Registry, ResourceType

AGGREGATED_V2 = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
AGGREGATED_V2BETA1 = "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList"

KUBERNETES_VERSION = {"major": "1", "minor": "37", "gitVersion": "v1.37.0+kubelite",
                      "gitCommit": "0000000000000000000000000000000000000000", "gitTreeState": "clean",
                      "buildDate": "2026-11-01T00:00:00Z", "goVersion": "go1.25.0", "compiler": "gc",
                      "platform": "linux/amd64"}


def aggregated_content_type(accept: str | None) -> str | None:
    """The aggregated discovery media type the client accepts, if any (v2 preferred)."""
    if not accept:
        return None
    for clause in accept.split(","):
        params = {p.split("=", 1)[0].strip(): p.split("=", 1)[1].strip()
                  for p in clause.split(";")[1:] if "=" in p}
        if params.get("g") == "apidiscovery.k8s.io" and params.get("as") == "APIGroupDiscoveryList":
            return AGGREGATED_V2 if params.get("v") == "v2" else AGGREGATED_V2BETA1
    return None


def api_versions(server_address: str) -> dict[str, Any]:
    return {"kind": "APIVersions", "versions": ["v1"],
            "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}]}


def api_group_list(registry: Registry) -> dict[str, Any]:
    return {"kind": "APIGroupList", "apiVersion": "v1",
            "groups": [api_group(registry, g) for g in registry.groups() if g]}


def api_group(registry: Registry, group: str) -> dict[str, Any]:
    versions = [{"groupVersion": f"{group}/{v}", "version": v} for v in registry.versions(group)]
    return {"kind": "APIGroup", "apiVersion": "v1", "name": group, "versions": versions,
            "preferredVersion": versions[0]}


def api_resource_list(registry: Registry, group: str, version: str) -> dict[str, Any]:
    resources: list[dict[str, Any]] = []
    for rt in registry.in_group_version(group, version):
        resources.append(_legacy_resource(rt))
        for sub in rt.subresources:
            resources.append({"name": f"{rt.plural}/{sub.name}", "singularName": "", "namespaced": rt.namespaced,
                              "kind": sub.kind, "verbs": list(sub.verbs),
                              **({"group": sub.group, "version": sub.version} if sub.group else {})})
    gv = f"{group}/{version}" if group else version
    return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": resources}


def _legacy_resource(rt: ResourceType) -> dict[str, Any]:
    entry: dict[str, Any] = {"name": rt.plural, "singularName": rt.singular, "namespaced": rt.namespaced,
                             "kind": rt.kind, "verbs": list(rt.verbs)}
    if rt.short_names:
        entry["shortNames"] = list(rt.short_names)
    if rt.categories:
        entry["categories"] = list(rt.categories)
    return entry


def aggregated(registry: Registry, *, core: bool) -> dict[str, Any]:
    groups = [""] if core else [g for g in registry.groups() if g]
    return {"kind": "APIGroupDiscoveryList", "apiVersion": "apidiscovery.k8s.io/v2", "metadata": {},
            "items": [_aggregated_group(registry, g) for g in groups]}


def _aggregated_group(registry: Registry, group: str) -> dict[str, Any]:
    versions = [{"version": v, "freshness": "Current",
                 "resources": [_aggregated_resource(rt) for rt in registry.in_group_version(group, v)]}
                for v in registry.versions(group)]
    return {"metadata": {"name": group}, "versions": versions}


def _aggregated_resource(rt: ResourceType) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "resource": rt.plural, "singularResource": rt.singular,
        "scope": "Namespaced" if rt.namespaced else "Cluster",
        "responseKind": {"group": rt.group, "version": rt.version, "kind": rt.kind},
        "verbs": list(rt.verbs),
    }
    if rt.short_names:
        entry["shortNames"] = list(rt.short_names)
    if rt.categories:
        entry["categories"] = list(rt.categories)
    if rt.subresources:
        entry["subresources"] = [
            {"subresource": s.name, "responseKind": {"group": s.group, "version": s.version, "kind": s.kind},
             "verbs": list(s.verbs)} for s in rt.subresources]
    return entry
