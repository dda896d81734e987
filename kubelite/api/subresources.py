"""Subresources with shapes of their own: scale (autoscaling/v1 Scale), pods/binding, pods/eviction."""

from __future__ import annotations

from aiohttp import web

from kubelite.api.body import read_bytes, read_object
from kubelite.api.codec import decode_body
from kubelite.api.handlers import Api, json_response
from kubelite.api.objectmeta import Obj, meta, now_rfc3339
from kubelite.api.query import delete_options, dry_run
from kubelite.api.requestinfo import ResourceRequest
from kubelite.objects.errors import BadRequest, Cause, MethodNotAllowed, conflict, invalid

SUCCESS = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}


async def handle_subresource(api: Api, request: web.Request, rr: ResourceRequest) -> web.Response:
    if rr.subresource == "scale":
        return await _scale(api, request, rr)
    if request.method != "POST":
        raise MethodNotAllowed(f"{request.method} is not supported on {rr.rt.plural}/{rr.subresource}")
    if rr.subresource == "binding":
        return await create_binding(api, request, rr)
    return await _evict(api, request, rr)


# ----- scale -------------------------------------------------------------------------------------

def to_scale(obj: Obj) -> Obj:
    from kubelite.objects.selectors import selector_to_string

    m = meta(obj)
    status = obj.get("status") or {}
    return {
        "kind": "Scale", "apiVersion": "autoscaling/v1",
        "metadata": {k: m[k] for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")
                     if k in m},
        "spec": {"replicas": (obj.get("spec") or {}).get("replicas", 0)},
        "status": {"replicas": status.get("replicas", 0),
                   "selector": selector_to_string((obj.get("spec") or {}).get("selector") or {})},
    }


async def _scale(api: Api, request: web.Request, rr: ResourceRequest) -> web.Response:
    storage = api.storage(rr.rt)
    assert rr.name is not None
    if request.method == "GET":
        return json_response(to_scale(await storage.get(rr.namespace, rr.name)))
    if request.method not in ("PUT", "PATCH"):
        raise MethodNotAllowed(f"{request.method} is not supported on {rr.rt.plural}/scale")
    raw = await read_bytes(request)

    def mutate(current: Obj) -> Obj:
        scale = _new_scale(request, raw, to_scale(current))
        sent_rv = meta(scale).get("resourceVersion")
        if sent_rv and sent_rv != meta(current).get("resourceVersion"):
            raise conflict(rr.rt.group_resource, str(rr.name), "the object has been modified; please apply "
                           "your changes to the latest version and try again")
        replicas = (scale.get("spec") or {}).get("replicas")
        if not isinstance(replicas, int) or isinstance(replicas, bool) or replicas < 0:
            raise invalid("Scale", str(rr.name), [Cause("FieldValueInvalid", f"Invalid value: {replicas}: "
                          "must be greater than or equal to 0", "spec.replicas")], group="autoscaling")
        current.setdefault("spec", {})["replicas"] = replicas
        return current

    updated = await storage.guaranteed_update(rr.namespace, rr.name, mutate, subresource="scale",
                                              dry_run=dry_run(request.query))
    return json_response(to_scale(updated))


def _new_scale(request: web.Request, raw: bytes, current_scale: Obj) -> Obj:
    if request.method == "PUT":
        scale = decode_body(raw, request.headers.get("Content-Type"))
        if not isinstance(scale, dict):
            raise BadRequest("the body must be an autoscaling/v1 Scale object")
        return scale
    from kubelite.objects.patch import apply_patch

    return apply_patch(current_scale, raw, request.headers.get("Content-Type") or "",
                       definition="io.k8s.api.autoscaling.v1.Scale")


# ----- binding -----------------------------------------------------------------------------------

async def create_binding(api: Api, request: web.Request, rr: ResourceRequest) -> web.Response:
    """Bind a pod to a node: set spec.nodeName once (the scheduler's only write to a pod)."""
    binding, _ = await read_object(request, rr.rt, expect_kind=("v1", "Binding"))
    pod_name = rr.name if rr.subresource == "binding" else meta(binding).get("name")
    target = binding.get("target") or {}
    if not pod_name or not target.get("name"):
        raise invalid("Binding", str(pod_name or ""), [Cause("FieldValueRequired", "Required value",
                                                             "target.name")])
    pods = api.core("pods")

    def bind(pod: Obj) -> Obj:
        spec = pod.setdefault("spec", {})
        if meta(pod).get("deletionTimestamp"):
            raise conflict("pods", str(pod_name), "pod is being deleted, cannot be assigned to a host")
        if spec.get("nodeName"):
            raise conflict("pods", str(pod_name), f"pod {pod_name} is already assigned to node "
                           f"\"{spec['nodeName']}\"")
        spec["nodeName"] = target["name"]
        _set_scheduled(pod)
        return pod

    await pods.guaranteed_update(rr.namespace, str(pod_name), bind, subresource="binding",
                                 dry_run=dry_run(request.query))
    return json_response(SUCCESS, status=201)


def _set_scheduled(pod: Obj) -> None:
    """Binding marks the pod PodScheduled=True, as upstream's binding storage does."""
    conditions = pod.setdefault("status", {}).setdefault("conditions", [])
    scheduled = {"type": "PodScheduled", "status": "True", "lastProbeTime": None,
                 "lastTransitionTime": now_rfc3339()}
    for i, condition in enumerate(conditions):
        if condition.get("type") == "PodScheduled":
            if condition.get("status") != "True":
                conditions[i] = scheduled
            return
    conditions.append(scheduled)


# ----- eviction ----------------------------------------------------------------------------------

async def _evict(api: Api, request: web.Request, rr: ResourceRequest) -> web.Response:
    """Evict = delete with the eviction's options (PodDisruptionBudgets are not served yet)."""
    raw = await read_bytes(request)
    eviction = decode_body(raw, request.headers.get("Content-Type")) if raw.strip() else {}
    if not isinstance(eviction, dict):
        raise BadRequest("the body must be a policy/v1 Eviction object")
    opts = delete_options(request.query, eviction.get("deleteOptions") or {})
    assert rr.name is not None
    await api.core("pods").delete(rr.namespace, rr.name, opts)
    return json_response(SUCCESS, status=201)
