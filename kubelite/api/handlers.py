"""REST handlers: one generic path for every resource (upstream's endpoints/handlers).

A request is parsed into (resource, namespace, name, subresource); the HTTP method and query pick
the verb; the verb runs against that resource's `ResourceStorage`. Subresources with their own
shapes (scale, binding, eviction) live in `kubelite.api.subresources`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aiohttp import web

from kubelite.api import body as bodies
from kubelite.api.codec import View, dumps, negotiate
from kubelite.api.objectmeta import Obj, meta
from kubelite.api.query import delete_options, dry_run, list_options, make_filter
from kubelite.api.requestinfo import ResourceRequest
from kubelite.api.storage import ListPage, ResourceStorage
from kubelite.api.watchstream import WatchStream, table_renderer
from kubelite.objects.errors import Forbidden, MethodNotAllowed, NotFound, NotImplementedYet
from kubelite.objects.registry import Registry, ResourceType

STREAMING_SUBRESOURCES = ("log", "exec", "attach", "portforward", "proxy")
NODE_PROXIED = ("log", "exec", "attach", "portforward")  # kubelite.api.proxy, to the pod's node agent


class Api:
    """The resources served and their storages; what handlers and bootstrap code share."""

    def __init__(self, registry: Registry, storages: dict[ResourceType, ResourceStorage], *,
                 data_dir: Path | None = None) -> None:
        self.registry = registry
        self.storages = storages
        self.data_dir = data_dir  # where the cluster CA is: the node proxy authenticates with it

    def storage(self, rt: ResourceType) -> ResourceStorage:
        return self.storages[rt]

    def core(self, plural: str) -> ResourceStorage:
        rt = self.registry.by_path("", "v1", plural)
        assert rt is not None
        return self.storages[rt]

    async def check_namespace_open(self, rt: ResourceType, namespace: str | None, name: str) -> None:
        """NamespaceLifecycle admission: no new content in a missing or terminating namespace."""
        if not rt.namespaced or namespace is None:
            return
        try:
            ns = await self.core("namespaces").get(None, namespace)
        except NotFound:
            raise NotFound(f'namespaces "{namespace}" not found',
                           details={"name": namespace, "kind": "namespaces"}) from None
        if meta(ns).get("deletionTimestamp") or (ns.get("status") or {}).get("phase") == "Terminating":
            raise Forbidden(f'{rt.group_resource} "{name}" is forbidden: unable to create new content in '
                            f'namespace {namespace} because it is being terminated',
                            details={"name": name, "kind": rt.plural, "group": rt.group,
                                     "causes": [{"reason": "NamespaceTerminating",
                                                 "message": f"namespace {namespace} is being terminated",
                                                 "field": "metadata.namespace"}]})


def json_response(obj: Any, *, status: int = 200, warnings: list[str] | None = None) -> web.Response:
    headers = {"Content-Type": "application/json"}
    response = web.Response(body=dumps(obj), status=status, headers=headers)
    for warning in warnings or []:
        response.headers.add("Warning", f'299 - "{_escape_warning(warning)}"')
    return response


def _escape_warning(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')


def render_one(request: web.Request, rt: ResourceType, obj: Obj) -> Obj:
    view = negotiate(request.headers.get("Accept"), include_object=request.query.get("includeObject"))
    if view.kind == "Table":
        from kubelite.objects.tables import to_table

        return to_table(rt, [obj], resource_version=meta(obj).get("resourceVersion", ""),
                        include_object=view.include_object)
    if view.kind.startswith("PartialObjectMetadata"):
        from kubelite.objects.tables import to_partial_object_metadata

        return to_partial_object_metadata(obj)
    return obj


def render_list(view: View, rt: ResourceType, page: ListPage) -> Obj:
    if view.kind == "Table":
        from kubelite.objects.tables import to_table

        return to_table(rt, page.items, resource_version=page.resource_version,
                        include_object=view.include_object, continue_token=page.continue_token)
    if view.kind.startswith("PartialObjectMetadata"):
        from kubelite.objects.tables import to_partial_object_metadata_list

        return to_partial_object_metadata_list(page.items, resource_version=page.resource_version,
                                               continue_token=page.continue_token)
    metadata: Obj = {"resourceVersion": page.resource_version}
    if page.continue_token:
        metadata["continue"] = page.continue_token
    items = [{**obj, "apiVersion": rt.api_version, "kind": rt.kind} for obj in page.items]
    return {"kind": rt.list_kind, "apiVersion": rt.api_version, "metadata": metadata, "items": items}


class ResourceHandler:
    def __init__(self, api: Api) -> None:
        self.api = api

    async def handle(self, request: web.Request, rr: ResourceRequest) -> web.StreamResponse:
        if rr.subresource in NODE_PROXIED and rr.rt.kind == "Pod" and not rr.rt.group:
            from kubelite.api.proxy import NodeProxy

            return await NodeProxy(self.api).handle(request, rr)
        if rr.subresource in STREAMING_SUBRESOURCES:
            raise NotImplementedYet(f"{rr.rt.plural}/{rr.subresource} is not served yet")
        if rr.subresource in ("scale", "binding", "eviction"):
            from kubelite.api.subresources import handle_subresource

            return await handle_subresource(self.api, request, rr)
        method = request.method
        if rr.name is None:
            return await self._collection(request, rr, method)
        return await self._item(request, rr, method, rr.name)

    async def _collection(self, request: web.Request, rr: ResourceRequest, method: str) -> web.StreamResponse:
        if method == "GET":
            if request.query.get("watch") in ("true", "1"):
                return await self.watch(request, rr)
            return await self.list(request, rr)
        if method == "POST":
            return await self.create(request, rr)
        if method == "DELETE":
            return await self.delete_collection(request, rr)
        raise MethodNotAllowed(f"method {method} is not supported on a collection of {rr.rt.plural}")

    async def _item(self, request: web.Request, rr: ResourceRequest, method: str, name: str) -> web.StreamResponse:
        if method == "GET":
            if request.query.get("watch") in ("true", "1"):
                return await self.watch(request, rr, name=name)
            obj = await self.api.storage(rr.rt).get(rr.namespace, name)
            return json_response(render_one(request, rr.rt, obj))
        if method == "PUT":
            return await self.update(request, rr, name)
        if method == "PATCH":
            return await self.patch(request, rr, name)
        if method == "DELETE":
            return await self.delete(request, rr, name)
        raise MethodNotAllowed(f"method {method} is not supported on {rr.rt.plural}/{name}")

    # ----- reads -----------------------------------------------------------------------------

    async def list(self, request: web.Request, rr: ResourceRequest) -> web.Response:
        view = negotiate(request.headers.get("Accept"), include_object=request.query.get("includeObject"))
        flt = make_filter(rr.rt, request.query)
        page = await self.api.storage(rr.rt).list(rr.namespace, list_options(rr.rt, request.query, flt))
        return json_response(render_list(view, rr.rt, page))

    async def watch(self, request: web.Request, rr: ResourceRequest, *, name: str | None = None) -> web.StreamResponse:
        view = negotiate(request.headers.get("Accept"), include_object=request.query.get("includeObject"))
        query = dict(request.query)
        if name is not None:
            query["fieldSelector"] = ",".join(filter(None, [query.get("fieldSelector"), f"metadata.name={name}"]))
        flt = make_filter(rr.rt, query)
        stream = WatchStream(request, self.api.storage(rr.rt), rr.namespace, flt, query,
                             table_renderer(view, rr.rt))
        return await stream.serve()

    # ----- writes ----------------------------------------------------------------------------

    async def create(self, request: web.Request, rr: ResourceRequest) -> web.Response:
        if rr.rt.plural == "bindings":
            from kubelite.api.subresources import create_binding

            return await create_binding(self.api, request, rr)
        obj, warnings = await bodies.read_object(request, rr.rt)
        bodies.check_namespace(obj, rr)
        name = str(meta(obj).get("name") or meta(obj).get("generateName") or "")
        await self.api.check_namespace_open(rr.rt, rr.namespace, name)
        created = await self.api.storage(rr.rt).create(rr.namespace, obj, dry_run=dry_run(request.query))
        return json_response(created, status=201, warnings=warnings)

    async def update(self, request: web.Request, rr: ResourceRequest, name: str) -> web.Response:
        if rr.subresource not in (None, "status", "finalize"):
            raise MethodNotAllowed(f"PUT is not supported on {rr.rt.plural}/{rr.subresource}")
        if rr.subresource == "finalize" and rr.rt.kind != "Namespace":
            raise NotFound(f"the server could not find the requested resource ({request.path})")
        obj, warnings = await bodies.read_object(request, rr.rt)
        bodies.check_namespace(obj, rr)
        updated = await self.api.storage(rr.rt).update(rr.namespace, name, obj, subresource=rr.subresource,
                                                       dry_run=dry_run(request.query))
        return json_response(updated, warnings=warnings)

    async def patch(self, request: web.Request, rr: ResourceRequest, name: str) -> web.Response:
        from kubelite.api.patching import patch_object

        return await patch_object(self.api, request, rr, name)

    async def delete(self, request: web.Request, rr: ResourceRequest, name: str) -> web.Response:
        if rr.subresource is not None:
            raise MethodNotAllowed(f"DELETE is not supported on {rr.rt.plural}/{rr.subresource}")
        body = await bodies.read_optional(request)
        opts = delete_options(request.query, body)
        obj, _gone = await self.api.storage(rr.rt).delete(rr.namespace, name, opts)
        return json_response(obj)

    async def delete_collection(self, request: web.Request, rr: ResourceRequest) -> web.Response:
        if "deletecollection" not in rr.rt.verbs:
            raise MethodNotAllowed(f"deletecollection is not supported on {rr.rt.plural}")
        body = await bodies.read_optional(request)
        opts = delete_options(request.query, body)
        flt = make_filter(rr.rt, request.query)
        storage = self.api.storage(rr.rt)
        page = await storage.list(rr.namespace, list_options(rr.rt, {}, flt))
        deleted = []
        for obj in page.items:
            try:
                removed, _ = await storage.delete(meta(obj).get("namespace"), meta(obj)["name"], opts)
            except NotFound:
                continue
            deleted.append(removed)
        return json_response(render_list(View("object"), rr.rt, ListPage(deleted, page.resource_version)))
