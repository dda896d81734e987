"""The Deployment controller: rolls a Deployment's pod template out through ReplicaSets.

Data flow: Deployment, ReplicaSet and Pod informer events only enqueue deployment keys (an RS maps
to its controlling deployment, an orphan RS to every deployment whose selector matches it; a pod
only matters to a Recreate rollout waiting for old pods to go). `sync` claims the RSs (adopting
matching orphans, releasing owned RSs that stopped matching), then, as upstream syncDeployment:
deleting → status only; pause/resume → Progressing condition; paused → scale only; deprecated
rollback annotation → rollback; resize → proportional scaling; else one Recreate or RollingUpdate step.
"""

from __future__ import annotations

from typing import Any

from kubelite.client import Handlers
from kubelite.client.resources import DEPLOYMENTS, PODS, REPLICASETS
from kubelite.controllers.base import Controller, Obj
from kubelite.controllers.deployment.context import Rollout
from kubelite.controllers.deployment.recreate import rollout_recreate
from kubelite.controllers.deployment.rollback import rollback, rollback_to
from kubelite.controllers.deployment.rolling import rollout_rolling
from kubelite.controllers.deployment.sync import (
    check_paused_conditions,
    is_scaling_event,
    sync_scaling,
    sync_status_only,
)
from kubelite.controllers.replicaset import (
    CONTROLLER_UID_INDEX,
    NAMESPACE_INDEX,
    Claimer,
    by_controller_uid,
    by_namespace,
    controller_ref,
    labels_of,
    recheck_owner,
    selector_or_none,
)


class DeploymentController(Controller):
    name = "deployment"
    workers = 5

    def setup(self) -> None:
        self.d_informer = self.informers.informer(DEPLOYMENTS)
        self.rs_informer = self.informers.informer(REPLICASETS)
        self.pod_informer = self.informers.informer(PODS)
        for informer in (self.d_informer, self.rs_informer, self.pod_informer):
            informer.add_index(NAMESPACE_INDEX, by_namespace)
        self.rs_informer.add_index(CONTROLLER_UID_INDEX, by_controller_uid)
        self.d_informer.add_handlers(self.enqueue_handlers())
        self.rs_informer.add_handlers(Handlers(on_add=self._add_rs, on_update=self._update_rs,
                                               on_delete=self._delete_rs))
        self.pod_informer.add_handlers(Handlers(on_delete=self._delete_pod))
        self._written: dict[str, Obj] = {}

    # ----- event handlers ------------------------------------------------------------------------

    def _resolve(self, namespace: str, ref: Obj | None, kind: str = "Deployment") -> Obj | None:
        if ref is None or ref.get("kind") != kind:
            return None
        informer = self.d_informer if kind == "Deployment" else self.rs_informer
        owner = informer.get(f"{namespace}/{ref.get('name')}")
        return owner if owner is not None and owner["metadata"].get("uid") == ref.get("uid") else None

    def _deployments_selecting(self, rs: Obj) -> list[Obj]:
        if not labels_of(rs):
            return []
        found = []
        for d in self.d_informer.by_index(NAMESPACE_INDEX, str(rs["metadata"].get("namespace") or "")):
            selector = selector_or_none(d)
            if selector is not None and not selector.empty and selector.matches(labels_of(rs)):
                found.append(d)
        return found

    def _add_rs(self, rs: Obj) -> None:
        if rs["metadata"].get("deletionTimestamp"):
            self._delete_rs(rs)
            return
        d = self._resolve(rs["metadata"]["namespace"], controller_ref(rs))
        if controller_ref(rs) is not None:
            if d is not None:
                self.enqueue(d)
            return
        for d in self._deployments_selecting(rs):
            self.enqueue(d)

    def _update_rs(self, old: Obj, cur: Obj) -> None:
        if old["metadata"].get("resourceVersion") == cur["metadata"].get("resourceVersion"):
            return
        cur_ref, old_ref = controller_ref(cur), controller_ref(old)
        if cur_ref != old_ref and old_ref is not None:
            old_d = self._resolve(old["metadata"]["namespace"], old_ref)
            if old_d is not None:
                self.enqueue(old_d)
        if cur_ref is not None:
            d = self._resolve(cur["metadata"]["namespace"], cur_ref)
            if d is not None:
                self.enqueue(d)
            return
        if labels_of(old) != labels_of(cur) or cur_ref != old_ref:
            for d in self._deployments_selecting(cur):
                self.enqueue(d)

    def _delete_rs(self, rs: Obj) -> None:
        d = self._resolve(rs["metadata"]["namespace"], controller_ref(rs))
        if d is not None:
            self.enqueue(d)

    def _delete_pod(self, pod: Obj) -> None:
        """A Recreate rollout waits for old pods to be gone: their deletion may unblock it."""
        namespace = pod["metadata"].get("namespace") or ""
        rs = self._resolve(namespace, controller_ref(pod), kind="ReplicaSet")
        d = self._resolve(namespace, controller_ref(rs)) if rs is not None else None
        if d is not None and ((d.get("spec") or {}).get("strategy") or {}).get("type") == "Recreate":
            self.enqueue(d)

    # ----- sync ---------------------------------------------------------------------------------

    def _latest(self, key: str) -> Obj | None:
        """The cached deployment, or what our last sync wrote if the cache has not caught up yet:
        acting on our own stale copy would only end in a Conflict and a retry."""
        cached, written = self.d_informer.get(key), self._written.pop(key, None)
        if cached is None or written is None:
            return cached
        try:
            newer = int(written["metadata"]["resourceVersion"]) > int(cached["metadata"]["resourceVersion"])
        except (KeyError, ValueError):
            return cached
        return written if newer and written["metadata"].get("uid") == cached["metadata"].get("uid") else cached

    async def sync(self, key: str) -> None:
        d = self._latest(key)
        if d is None:
            return
        r = await self._sync(d)
        if r is not None and r.stored is not d:
            self._written[key] = r.stored

    async def _sync(self, d: Obj) -> Rollout | None:
        selector = (d.get("spec") or {}).get("selector") or {}
        if not selector.get("matchLabels") and not selector.get("matchExpressions"):
            await self._selecting_all(d)
            return None
        rss = await self._claim_replica_sets(d)
        r = Rollout(self, d, rss, self._pod_map(d, rss))
        if d["metadata"].get("deletionTimestamp"):
            await sync_status_only(r)
            return r
        await check_paused_conditions(r)
        if (r.d.get("spec") or {}).get("paused"):
            await sync_scaling(r)
        elif rollback_to(r.d) is not None:
            await rollback(r)
        elif await is_scaling_event(r):
            await sync_scaling(r)
        elif ((r.d.get("spec") or {}).get("strategy") or {}).get("type") == "Recreate":
            await rollout_recreate(r)
        else:
            await rollout_rolling(r)
        return r

    async def _selecting_all(self, d: Obj) -> None:
        self.events.record(d, "Warning", "SelectingAll",
                           "This deployment is selecting all pods. A non-empty selector is required.")
        generation = d["metadata"].get("generation") or 0
        if int((d.get("status") or {}).get("observedGeneration") or 0) < generation:
            await self.client.update(DEPLOYMENTS, {**d, "status": {**(d.get("status") or {}),
                                                                   "observedGeneration": generation}},
                                     subresource="status")

    async def _claim_replica_sets(self, d: Obj) -> list[Obj]:
        selector = selector_or_none(d)
        if selector is None:
            return []
        namespace, name = d["metadata"].get("namespace"), d["metadata"]["name"]

        async def patch(rs: Obj, body: Obj) -> Any:
            return await self.client.patch(REPLICASETS, rs["metadata"]["name"], body, namespace,
                                           patch_type="strategic")

        async def get() -> Obj:
            return await self.client.get(DEPLOYMENTS, name, namespace)

        claimer = Claimer(d, selector, patch=patch, can_adopt=recheck_owner(get, d))
        return await claimer.claim(self.rs_informer.by_index(NAMESPACE_INDEX, str(namespace or "")))

    def _pod_map(self, d: Obj, rss: list[Obj]) -> dict[str, list[Obj]]:
        """Pods matching the deployment's selector, by the uid of the claimed RS controlling them."""
        selector = selector_or_none(d)
        pod_map: dict[str, list[Obj]] = {str(rs["metadata"].get("uid")): [] for rs in rss}
        if selector is None:
            return pod_map
        for pod in self.pod_informer.by_index(NAMESPACE_INDEX, str(d["metadata"].get("namespace") or "")):
            ref = controller_ref(pod)
            if ref is not None and ref.get("uid") in pod_map and selector.matches(labels_of(pod)):
                pod_map[str(ref["uid"])].append(pod)
        return pod_map
