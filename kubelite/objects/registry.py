"""The resource registry: every kind the API serves, described as data.

One entry per (group, version, resource). The API server, discovery, OpenAPI, the client and
kubectl-facing tables all read this table; adding a kind is adding an entry here plus (optionally)
a strategy in `kubelite.api.strategies`.

`storage` names the storage bucket of a resource. Two versions of the same resource (core/v1 Event
and events.k8s.io/v1 Event) share one bucket, as upstream stores them once and converts.
"""

from __future__ import annotations

from dataclasses import dataclass, field

ALL_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")


@dataclass(frozen=True)
class Subresource:
    name: str
    kind: str
    group: str = ""
    version: str = "v1"
    verbs: tuple[str, ...] = ("get", "patch", "update")


@dataclass(frozen=True)
class ResourceType:
    group: str
    version: str
    kind: str
    plural: str
    namespaced: bool = True
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    verbs: tuple[str, ...] = ALL_VERBS
    subresources: tuple[Subresource, ...] = ()
    storage: str = ""
    # OpenAPI definition name, e.g. io.k8s.api.apps.v1.Deployment
    definition: str = ""
    extra: dict[str, str] = field(default_factory=dict, compare=False, hash=False)

    @property
    def singular(self) -> str:
        return self.kind.lower()

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def group_resource(self) -> str:
        """`deployments.apps`, or `pods` for the core group (the form used in error messages)."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def list_kind(self) -> str:
        return self.kind + "List"

    @property
    def storage_key(self) -> str:
        return self.storage or self.group_resource

    def subresource(self, name: str) -> Subresource | None:
        return next((s for s in self.subresources if s.name == name), None)

    def path(self, namespace: str | None = None, name: str | None = None) -> str:
        base = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        if self.namespaced and namespace:
            base += f"/namespaces/{namespace}"
        base += f"/{self.plural}"
        return base + (f"/{name}" if name else "")


def _status(kind: str, group: str = "", version: str = "v1") -> Subresource:
    return Subresource("status", kind, group, version)


def _scale() -> Subresource:
    return Subresource("scale", "Scale", "autoscaling", "v1")


_POD_STREAMS = tuple(
    Subresource(name, kind, group, verbs=verbs)
    for name, kind, group, verbs in (
        ("attach", "PodAttachOptions", "", ("create", "get")),
        ("binding", "Binding", "", ("create",)),
        ("eviction", "Eviction", "policy", ("create",)),
        ("exec", "PodExecOptions", "", ("create", "get")),
        ("log", "Pod", "", ("get",)),
        ("portforward", "PodPortForwardOptions", "", ("create", "get")),
        ("proxy", "PodProxyOptions", "", ("create", "delete", "get", "patch", "update")),
    )
)


def _core(kind: str, plural: str, **kw: object) -> ResourceType:
    return ResourceType("", "v1", kind, plural, definition=f"io.k8s.api.core.v1.{kind}", **kw)  # type: ignore[arg-type]


RESOURCES: tuple[ResourceType, ...] = (
    _core("Binding", "bindings", verbs=("create",)),
    _core("ConfigMap", "configmaps", short_names=("cm",)),
    _core("Endpoints", "endpoints", short_names=("ep",)),
    _core("Event", "events", short_names=("ev",), storage="events"),
    _core("Namespace", "namespaces", namespaced=False, short_names=("ns",),
          verbs=("create", "delete", "get", "list", "patch", "update", "watch"),
          subresources=(_status("Namespace"), Subresource("finalize", "Namespace", verbs=("update",)))),
    _core("Node", "nodes", namespaced=False, short_names=("no",),
          subresources=(_status("Node"), Subresource("proxy", "NodeProxyOptions",
                                                     verbs=("create", "delete", "get", "patch", "update")))),
    _core("Pod", "pods", short_names=("po",), categories=("all",),
          subresources=(_status("Pod"), *_POD_STREAMS)),
    _core("Secret", "secrets"),
    _core("ServiceAccount", "serviceaccounts", short_names=("sa",)),
    _core("Service", "services", short_names=("svc",), categories=("all",),
          subresources=(_status("Service"), Subresource("proxy", "ServiceProxyOptions",
                                                        verbs=("create", "delete", "get", "patch", "update")))),
    ResourceType("apps", "v1", "Deployment", "deployments", short_names=("deploy",), categories=("all",),
                 subresources=(_status("Deployment", "apps"), _scale()),
                 definition="io.k8s.api.apps.v1.Deployment"),
    ResourceType("apps", "v1", "ReplicaSet", "replicasets", short_names=("rs",), categories=("all",),
                 subresources=(_status("ReplicaSet", "apps"), _scale()),
                 definition="io.k8s.api.apps.v1.ReplicaSet"),
    ResourceType("coordination.k8s.io", "v1", "Lease", "leases",
                 definition="io.k8s.api.coordination.v1.Lease"),
    ResourceType("discovery.k8s.io", "v1", "EndpointSlice", "endpointslices",
                 definition="io.k8s.api.discovery.v1.EndpointSlice"),
    ResourceType("events.k8s.io", "v1", "Event", "events", short_names=("ev",), storage="events",
                 definition="io.k8s.api.events.v1.Event"),
)

# Discovery order of groups, as kube-apiserver lists them (core first).
GROUP_ORDER: tuple[str, ...] = ("", "apps", "events.k8s.io", "coordination.k8s.io", "discovery.k8s.io")


class Registry:
    """Lookup over RESOURCES by path segments, kind, or any name kubectl may use."""

    def __init__(self, resources: tuple[ResourceType, ...] = RESOURCES) -> None:
        self.resources = resources
        self._by_path = {(r.group, r.version, r.plural): r for r in resources}
        self._by_kind = {(r.group, r.version, r.kind): r for r in resources}

    def groups(self) -> list[str]:
        present = {r.group for r in self.resources}
        return [g for g in GROUP_ORDER if g in present] + sorted(present - set(GROUP_ORDER))

    def versions(self, group: str) -> list[str]:
        return sorted({r.version for r in self.resources if r.group == group})

    def in_group_version(self, group: str, version: str) -> list[ResourceType]:
        return sorted((r for r in self.resources if r.group == group and r.version == version),
                      key=lambda r: r.plural)

    def by_path(self, group: str, version: str, plural: str) -> ResourceType | None:
        return self._by_path.get((group, version, plural))

    def by_kind(self, api_version: str, kind: str) -> ResourceType | None:
        group, _, version = api_version.rpartition("/")
        return self._by_kind.get((group, version, kind))

    def same_storage(self, rt: ResourceType) -> list[ResourceType]:
        return [r for r in self.resources if r.storage_key == rt.storage_key]


REGISTRY = Registry()
