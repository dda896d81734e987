"""The EndpointSlice controller: for every Service with a selector, discovery.k8s.io/v1 slices
listing the pods it selects (upstream's endpointslice controller).

Data flow: Service, Pod, Node and EndpointSlice informers -> handlers enqueue Service keys ->
`sync` reads the caches, asks the pure `reconciler.reconcile` for a plan and applies it. Slices are
owned by their Service (controller ownerReference), so the garbage collector removes them with it.

Invariants: a sync never plans from a cache that lags our own writes (the `SliceTracker` check
fails the sync, which is retried after backoff); handlers only enqueue; slice events that merely
echo our own writes do not trigger syncs.
"""

from __future__ import annotations

import contextlib
from typing import Any

from kubelite.client import Handlers
from kubelite.client.resources import ENDPOINTSLICES, NODES, PODS, SERVICES
from kubelite.controllers.base import Controller, split_key
from kubelite.controllers.endpointslice import reconciler, util
from kubelite.controllers.endpointslice.tracker import SliceTracker, slice_service_key
from kubelite.objects.errors import Forbidden, NotFound

Obj = dict[str, Any]

SERVICE_INDEX = "endpointslices.kubelite.io/service"
SLICE_CHANGE_DELAY = 1.0  # upstream's endpointSliceChangeMinSyncDelay


class StaleCache(Exception):
    """The EndpointSlice cache has not caught up with our own writes yet; retry shortly."""


class MissingNodes(Exception):
    """Some pods were left out because their Node is unknown; retry until it appears."""


def namespace_terminating(error: Exception) -> bool:
    return isinstance(error, Forbidden) and "being terminated" in str(error)


class EndpointSliceController(Controller):
    name = "endpointslice"
    workers = 4

    def name_for_events(self) -> str:
        return "endpoint-slice-controller"

    def setup(self) -> None:
        self.tracker = SliceTracker()
        self.services = self.informers.informer(SERVICES)
        self.pods = self.informers.informer(PODS)
        self.slices = self.informers.informer(ENDPOINTSLICES)
        self.nodes = self.informers.informer(NODES)
        self.services.add_index(util.NAMESPACE_INDEX, util.by_namespace)
        self.pods.add_index(util.NAMESPACE_INDEX, util.by_namespace)
        self.pods.add_index(util.NODE_INDEX, util.by_node_name)
        self.slices.add_index(SERVICE_INDEX, lambda s: [k] if (k := slice_service_key(s)) else [])
        self.services.add_handlers(self.enqueue_handlers())
        self.pods.add_handlers(Handlers(on_add=self._pod_added, on_update=self._pod_updated,
                                        on_delete=self._pod_added))
        self.slices.add_handlers(Handlers(on_add=self._slice_added, on_update=self._slice_updated,
                                          on_delete=self._slice_deleted))
        self.nodes.add_handlers(Handlers(on_add=self._node_changed, on_delete=self._node_changed,
                                         on_update=self._node_updated))

    # ----- handlers: only enqueue -------------------------------------------------------------------

    def _namespace_services(self, pod: Obj) -> list[Obj]:
        return self.services.by_index(util.NAMESPACE_INDEX, util.by_namespace(pod)[0])

    def _pod_added(self, pod: Obj) -> None:
        for key in util.pod_memberships(self._namespace_services(pod), pod):
            self.queue.add(key)

    def _pod_updated(self, old: Obj, new: Obj) -> None:
        for key in util.services_to_update(self._namespace_services(new), old, new):
            self.queue.add(key)

    def _managed(self, slice_: Obj) -> bool:
        return ((slice_.get("metadata") or {}).get("labels") or {}).get(util.LABEL_MANAGED_BY) == \
            util.CONTROLLER_NAME

    def _requeue_for(self, slice_: Obj) -> None:
        key = slice_service_key(slice_)
        if key:
            self.queue.add_after(key, SLICE_CHANGE_DELAY)

    def _slice_added(self, slice_: Obj) -> None:
        if self._managed(slice_) and self.tracker.should_sync(slice_):
            self._requeue_for(slice_)

    def _slice_updated(self, old: Obj, new: Obj) -> None:
        if slice_service_key(old) != slice_service_key(new):
            self._requeue_for(old)
            self._requeue_for(new)
        elif self._managed(old) != self._managed(new) or (self._managed(new) and self.tracker.should_sync(new)):
            self._requeue_for(new)

    def _slice_deleted(self, slice_: Obj) -> None:
        if self._managed(slice_) and self.tracker.has(slice_) and not self.tracker.handle_deletion(slice_):
            self._requeue_for(slice_)

    def _node_changed(self, node: Obj) -> None:
        """A node appearing, going or changing zone changes its pods' endpoints."""
        for pod in self.pods.by_index(util.NODE_INDEX, str(node["metadata"]["name"])):
            self._pod_added(pod)

    def _node_updated(self, old: Obj, new: Obj) -> None:
        zone = util.LABEL_ZONE
        if (old["metadata"].get("labels") or {}).get(zone) != (new["metadata"].get("labels") or {}).get(zone):
            self._node_changed(new)

    # ----- sync -----------------------------------------------------------------------------------

    async def sync(self, key: str) -> None:
        namespace, name = split_key(key)
        service = self.services.get(key)
        if service is None:
            self.tracker.delete_service(key)  # its slices go with it through the garbage collector
            return
        if not util.selects_pods(service):
            return
        pods = [p for p in self.pods.by_index(util.NAMESPACE_INDEX, namespace or "")
                if util.selector_matches(service["spec"]["selector"], p["metadata"].get("labels"))]
        slices = [s for s in self.slices.by_index(SERVICE_INDEX, key)
                  if self._managed(s) and not s["metadata"].get("deletionTimestamp")]
        if self.tracker.stale(service, slices):
            raise StaleCache(f"EndpointSlice cache for {key} is out of date")
        plan = reconciler.reconcile(service, pods, slices, node_of=self.nodes.get)
        try:
            await self._apply(service, plan)
        except Exception as exc:
            if not isinstance(exc, StaleCache):
                self.events.record(service, "Warning", "FailedToUpdateEndpointSlices",
                                   f"Error updating Endpoint Slices for Service {key}: {exc}")
            raise
        if plan.missing_nodes:
            raise MissingNodes(f"{key}: skipped pods on unknown nodes: {', '.join(plan.missing_nodes)}")

    async def _apply(self, service: Obj, plan: reconciler.Plan) -> None:
        namespace = service["metadata"]["namespace"]
        if not service["metadata"].get("deletionTimestamp"):  # no racing the garbage collector
            for slice_ in plan.create:
                try:
                    self.tracker.update(await self.client.create(ENDPOINTSLICES, slice_, namespace))
                except Forbidden as exc:
                    if namespace_terminating(exc):
                        return
                    raise
        for slice_ in plan.update:
            self.tracker.update(await self.client.update(ENDPOINTSLICES, slice_))
        for slice_ in plan.delete:
            with contextlib.suppress(NotFound):
                await self.client.delete(ENDPOINTSLICES, slice_["metadata"]["name"], namespace)
            self.tracker.expect_deletion(slice_)
