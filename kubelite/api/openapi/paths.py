"""The REST paths and operations of each resource, as a dialect-neutral model.

Mirrors what kube-apiserver's installer registers for a resource: the collection
(list/create/deletecollection), the item (read/replace/patch/delete), the deprecated `watch/` paths,
the all-namespaces list of a namespaced resource, and the subresources. Operations carry
upstream's operationId, `x-kubernetes-action` and `x-kubernetes-group-version-kind`: kubectl's
query-param verifier finds a kind's PATCH operation by that GVK and then looks for
`fieldValidation` among its parameters. `render.py` turns the model into Swagger 2.0 or OpenAPI 3.0.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from kubelite.api.openapi import params
from kubelite.api.openapi.schemas import GVK, resolve_kind
from kubelite.objects.registry import Registry, ResourceType, Subresource

META = "io.k8s.apimachinery.pkg.apis.meta.v1."
STATUS = META + "Status"
DELETE_OPTIONS = META + "DeleteOptions"
WATCH_EVENT = META + "WatchEvent"
PATCH_BODY = META + "Patch"
RESOURCE_LIST = META + "APIResourceList"

OBJECT_TYPES = ("application/json", "application/yaml", "application/vnd.kubernetes.protobuf")
STREAM_TYPES = (*OBJECT_TYPES, "application/json;stream=watch", "application/vnd.kubernetes.protobuf;stream=watch")
PATCH_TYPES = ("application/json-patch+json", "application/merge-patch+json",
               "application/strategic-merge-patch+json", "application/apply-patch+yaml")
CONNECT_METHODS = {"get": "get", "create": "post", "update": "put", "patch": "patch", "delete": "delete"}
STRING = ""  # a response whose schema is `{type: string}` instead of a definition


@dataclass(frozen=True)
class Response:
    code: int
    description: str
    schema: str  # definition name, or STRING


@dataclass(frozen=True)
class Operation:
    method: str  # get, put, post, patch, delete
    action: str  # x-kubernetes-action
    operation_id: str
    description: str
    gvk: GVK
    tag: str
    params: tuple[str, ...] = ()  # query parameter names, see params.QUERY
    body: str | None = None  # request body definition name
    responses: tuple[Response, ...] = ()
    produces: tuple[str, ...] = OBJECT_TYPES
    consumes: tuple[str, ...] = ("*/*",)


@dataclass
class PathItem:
    path: str
    params: list[params.Param] = field(default_factory=list)  # shared by all operations of the path
    operations: list[Operation] = field(default_factory=list)


def _ok(schema: str) -> tuple[Response, ...]:
    return (Response(200, "OK", schema),)


def _created(schema: str) -> tuple[Response, ...]:
    return (Response(200, "OK", schema), Response(201, "Created", schema))


def _accepted(schema: str) -> tuple[Response, ...]:
    return (*_created(schema), Response(202, "Accepted", schema))


def tag(group: str, version: str) -> str:
    """`core_v1`, `apps_v1`, `coordination_v1`, `rbacAuthorization_v1`."""
    parts = (group or "core").removesuffix(".k8s.io").split(".")
    return parts[0] + "".join(p.title() for p in parts[1:]) + "_" + version


def _op_group(group: str, version: str) -> str:
    """`CoreV1`, `AppsV1`, `CoordinationV1`: the group-version part of an operationId."""
    parts = (group or "core").removesuffix(".k8s.io").split(".")
    return "".join(p.title() for p in parts) + version.title()


@dataclass(frozen=True)
class _Resource:
    """What every operation of one resource needs to know, computed once."""

    rt: ResourceType
    definition: str
    list_definition: str
    gvk: GVK
    tag: str
    op_group: str

    @property
    def scope(self) -> str:
        return "Namespaced" if self.rt.namespaced else ""

    def op_id(self, verb: str, suffix: str = "") -> str:
        return f"{verb}{self.op_group}{self.scope}{self.rt.kind}{suffix}"

    def op(self, method: str, action: str, verb: str, description: str, *, suffix: str = "",
           gvk: GVK | None = None, operation_id: str = "", **kw: Any) -> Operation:
        return Operation(method, action, operation_id or self.op_id(verb, suffix), description, gvk or self.gvk,
                         self.tag, **kw)


def _resource(rt: ResourceType) -> _Resource:
    found, gvk = resolve_kind(rt.group, rt.version, rt.kind)
    definition = rt.definition or found or ""
    list_found, _ = resolve_kind(rt.group, rt.version, rt.list_kind)
    return _Resource(rt, definition, list_found or definition + "List", gvk, tag(rt.group, rt.version),
                     _op_group(rt.group, rt.version))


def group_version_paths(registry: Registry, group: str, version: str) -> list[PathItem]:
    """Every path of one group-version, in upstream's order (sorted by path)."""
    prefix = f"/apis/{group}/{version}" if group else f"/api/{version}"
    items: dict[str, PathItem] = {}
    root = PathItem(prefix + "/", operations=[Operation(
        "get", "", f"get{_op_group(group, version)}APIResources", "get available resources", ("", "", ""),
        tag(group, version), responses=_ok(RESOURCE_LIST))])
    items[root.path] = root
    for rt in registry.in_group_version(group, version):
        for item in resource_paths(prefix, rt):
            items[item.path] = item
    return [items[p] for p in sorted(items)]


def resource_paths(prefix: str, rt: ResourceType) -> list[PathItem]:
    res = _resource(rt)
    scope = prefix + ("/namespaces/{namespace}" if rt.namespaced else "")
    collection = f"{scope}/{rt.plural}"
    scope_params = [params.path_param("namespace")] if rt.namespaced else []
    pretty = params.query("pretty")
    item_params = [params.path_param("name", rt.kind), *scope_params, pretty]
    paths = [
        PathItem(collection, [*scope_params, pretty], _collection_ops(res)),
        PathItem(collection + "/{name}", item_params, _item_ops(res)),
        *_watch_paths(prefix, res, scope_params),
    ]
    if rt.namespaced and "list" in rt.verbs:
        paths.append(_all_namespaces(prefix, res))
    for sub in rt.subresources:
        paths.extend(_subresource_paths(res, collection + "/{name}/" + sub.name, item_params, sub))
    return [p for p in paths if p.operations]


def _collection_ops(res: _Resource) -> list[Operation]:
    verbs, kind = res.rt.verbs, res.rt.kind
    ops = []
    if "list" in verbs:
        ops.append(res.op("get", "list", "list", f"list or watch objects of kind {kind}", params=params.LIST,
                          responses=_ok(res.list_definition), produces=STREAM_TYPES))
    if "create" in verbs:
        ops.append(res.op("post", "post", "create", f"create a {kind}", params=params.CREATE,
                          body=res.definition, responses=_accepted(res.definition)))
    if "deletecollection" in verbs:
        ops.append(res.op("delete", "deletecollection", "delete", f"delete collection of {kind}",
                          operation_id=f"delete{res.op_group}Collection{res.scope}{kind}",
                          params=params.DELETE_COLLECTION, body=DELETE_OPTIONS, responses=_ok(STATUS)))
    return ops


def _item_ops(res: _Resource) -> list[Operation]:
    verbs, kind = res.rt.verbs, res.rt.kind
    table = (
        ("get", "get", "get", "read", f"read the specified {kind}", (), None, _ok(res.definition)),
        ("update", "put", "put", "replace", f"replace the specified {kind}", params.UPDATE, res.definition,
         _created(res.definition)),
        ("patch", "patch", "patch", "patch", f"partially update the specified {kind}", params.PATCH, PATCH_BODY,
         _created(res.definition)),
        ("delete", "delete", "delete", "delete", f"delete a {kind}", params.DELETE, DELETE_OPTIONS,
         (Response(200, "OK", STATUS), Response(202, "Accepted", STATUS))),
    )
    return [res.op(method, action, op_verb, description, params=query, body=body, responses=responses,
                   consumes=PATCH_TYPES if method == "patch" else ("*/*",))
            for verb, method, action, op_verb, description, query, body, responses in table if verb in verbs]


def _watch_paths(prefix: str, res: _Resource, scope_params: list[params.Param]) -> list[PathItem]:
    if "watch" not in res.rt.verbs:
        return []
    rt, kind = res.rt, res.rt.kind
    scope = prefix + "/watch" + ("/namespaces/{namespace}" if rt.namespaced else "")
    list_params = [params.query(p) for p in params.LIST]
    deprecated = "deprecated: use the 'watch' parameter with a list operation instead"
    watch_list = res.op("get", "watchlist", "watch", f"watch individual changes to a list of {kind}. {deprecated}.",
                        suffix="List", responses=_ok(WATCH_EVENT), produces=STREAM_TYPES)
    watch_one = res.op("get", "watch", "watch", f"watch changes to an object of kind {kind}. {deprecated}, "
                       "filtered to a single item with the 'fieldSelector' parameter.",
                       responses=_ok(WATCH_EVENT), produces=STREAM_TYPES)
    name = params.path_param("name", kind)
    items = [PathItem(f"{scope}/{rt.plural}", [*scope_params, *list_params], [watch_list]),
             PathItem(f"{scope}/{rt.plural}/{{name}}", [name, *scope_params, *list_params], [watch_one])]
    if rt.namespaced:
        every = res.op("get", "watchlist", "watch", watch_list.description,
                       operation_id=f"watch{res.op_group}{kind}ListForAllNamespaces", responses=_ok(WATCH_EVENT),
                       produces=STREAM_TYPES)
        items.append(PathItem(f"{prefix}/watch/{rt.plural}", list_params, [every]))
    return items


def _all_namespaces(prefix: str, res: _Resource) -> PathItem:
    kind = res.rt.kind
    list_params = [params.query(p) for p in params.LIST]
    op = Operation("get", "list", f"list{res.op_group}{kind}ForAllNamespaces",
                   f"list or watch objects of kind {kind}", res.gvk, res.tag,
                   responses=_ok(res.list_definition), produces=STREAM_TYPES)
    return PathItem(f"{prefix}/{res.rt.plural}", list_params, [op])


def _subresource_paths(res: _Resource, path: str, item_params: list[params.Param],
                       sub: Subresource) -> list[PathItem]:
    if sub.name in params.CONNECT:
        base = item_params[:-1]  # connect paths take no `pretty`
        proxy = sub.name == "proxy"
        items = [PathItem(path, [*base, *([params.query("path")] if proxy else [])], _connect_ops(res, sub, ""))]
        if proxy:
            items.append(PathItem(path + "/{path}", [*base, params.path_param("path")],
                                  _connect_ops(res, sub, "WithPath")))
        return items
    return [PathItem(path, list(item_params), _subresource_ops(res, sub))]


def _subresource_ops(res: _Resource, sub: Subresource) -> list[Operation]:
    definition, gvk = resolve_kind(sub.group, sub.version, sub.kind)
    schema = definition or res.definition
    kind, name, suffix = res.rt.kind, sub.name, sub.name.title()
    if name == "log":
        return [res.op("get", "get", "read", f"read log of the specified {kind}", suffix=suffix, gvk=gvk,
                       params=params.LOG, responses=_ok(STRING),
                       produces=("text/plain", *OBJECT_TYPES))]
    table = (
        ("get", "get", "get", "read", f"read {name} of the specified {kind}", (), None, _ok(schema)),
        ("update", "put", "put", "replace", f"replace {name} of the specified {kind}", params.UPDATE, schema,
         _created(schema)),
        ("patch", "patch", "patch", "patch", f"partially update {name} of the specified {kind}", params.PATCH,
         PATCH_BODY, _created(schema)),
        ("create", "post", "post", "create", f"create {name} of a {kind}", params.CREATE, schema, _accepted(schema)),
    )
    return [res.op(method, action, op_verb, description, suffix=suffix, gvk=gvk, params=query, body=body,
                   responses=responses, consumes=PATCH_TYPES if method == "patch" else ("*/*",))
            for verb, method, action, op_verb, description, query, body, responses in table if verb in sub.verbs]


def _connect_ops(res: _Resource, sub: Subresource, suffix: str) -> list[Operation]:
    _, gvk = resolve_kind(sub.group, sub.version, sub.kind)
    query = params.CONNECT[sub.name]
    ops = []
    for verb, method in CONNECT_METHODS.items():
        if verb not in sub.verbs:
            continue
        operation_id = f"connect{res.op_group}{method.title()}{res.scope}{res.rt.kind}{sub.name.title()}{suffix}"
        ops.append(res.op(method, "connect", "connect", f"connect {method.upper()} requests to {sub.name} of "
                          f"{res.rt.kind}", operation_id=operation_id, gvk=gvk, params=query,
                          responses=_ok(STRING), produces=("*/*",)))
    return ops
