"""PATCH: apply the patch to the live object, check the result like a full object, write it with
compare-and-swap, and retry from a fresh read when another writer won the race.

Server-side apply (`application/apply-patch+yaml`) to a missing object creates it, which is how
`kubectl apply --server-side` creates objects (it sends no GET first).
"""

from __future__ import annotations

from aiohttp import web

from kubelite.api.body import check_namespace, check_object, read_bytes
from kubelite.api.codec import media_type
from kubelite.api.handlers import Api, json_response
from kubelite.api.objectmeta import Obj, meta
from kubelite.api.query import dry_run
from kubelite.api.requestinfo import ResourceRequest
from kubelite.objects.errors import BadRequest, MethodNotAllowed, NotFound, conflict

APPLY = "application/apply-patch+yaml"


async def patch_object(api: Api, request: web.Request, rr: ResourceRequest, name: str) -> web.Response:
    from kubelite.objects.patch import apply_patch

    if rr.subresource not in (None, "status"):
        raise MethodNotAllowed(f"PATCH is not supported on {rr.rt.plural}/{rr.subresource}")
    raw = await read_bytes(request)
    content_type = request.headers.get("Content-Type") or ""
    is_apply = media_type(content_type) == APPLY
    if is_apply and not request.query.get("fieldManager"):
        raise BadRequest("PATCH with application/apply-patch+yaml requires the fieldManager query parameter")
    warnings: list[str] = []

    def mutate(current: Obj) -> Obj:
        patched = apply_patch(current, raw, content_type, definition=rr.rt.definition)
        warnings[:] = check_object(patched, rr.rt, request.query)
        sent_rv = meta(patched).get("resourceVersion")
        if sent_rv and sent_rv != meta(current).get("resourceVersion"):
            raise conflict(rr.rt.group_resource, name, "the object has been modified; please apply your "
                           "changes to the latest version and try again (resourceVersion precondition)")
        return patched

    storage = api.storage(rr.rt)
    try:
        obj = await storage.guaranteed_update(rr.namespace, name, mutate, subresource=rr.subresource,
                                              dry_run=dry_run(request.query))
    except NotFound:
        if not is_apply or rr.subresource is not None:
            raise
        return await _apply_create(api, request, rr, name, raw, content_type)
    return json_response(obj, warnings=warnings)


async def _apply_create(api: Api, request: web.Request, rr: ResourceRequest, name: str, raw: bytes,
                        content_type: str) -> web.Response:
    from kubelite.objects.patch import apply_patch

    obj = apply_patch({}, raw, content_type, definition=rr.rt.definition)
    warnings = check_object(obj, rr.rt, request.query)
    check_namespace(obj, rr)
    if meta(obj).get("name") not in (None, name):
        raise BadRequest(f"the name of the object ({meta(obj).get('name')}) does not match the name on the "
                         f"URL ({name})")
    meta(obj)["name"] = name
    await api.check_namespace_open(rr.rt, rr.namespace, name)
    created = await api.storage(rr.rt).create(rr.namespace, obj, dry_run=dry_run(request.query))
    return json_response(created, status=201, warnings=warnings)
