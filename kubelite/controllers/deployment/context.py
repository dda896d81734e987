"""One sync of one Deployment: its working copy and every write the rollout code makes.

`Rollout` holds a private copy of the deployment (`d`) and of its claimed ReplicaSets (`rss`). Every
write goes through it and replaces the copy with what the API returned, so later steps of the same
sync read their own writes instead of the (older) informer cache, and every write carries the
resourceVersion it was computed from: if anyone changed the object meanwhile, the write fails with
Conflict and the key is retried from a fresh cache, never acting twice on stale data.

The deployment's own revision annotation is metadata, which our status subresource does not take
(upstream's does), so `update_status` patches it first, then PUTs the status.
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any

from kubelite.client.resources import DEPLOYMENTS, REPLICASETS
from kubelite.controllers.deployment.status import same_status, wire
from kubelite.controllers.deployment.util import (
    REVISION,
    Obj,
    annotations_of,
    max_surge,
    replicas,
    replicas_annotations_need_update,
    set_replicas_annotations,
)

if TYPE_CHECKING:
    from kubelite.controllers.deployment.controller import DeploymentController


class Rollout:
    def __init__(self, controller: DeploymentController, d: Obj, rss: list[Obj],
                 pod_map: dict[str, list[Obj]] | None = None) -> None:
        self.controller = controller
        self.client = controller.client
        self.d = copy.deepcopy(d)
        self.stored = d
        self.rss = list(rss)
        self.pod_map = pod_map or {}

    @property
    def name(self) -> str:
        return str(self.d["metadata"]["name"])

    @property
    def namespace(self) -> str:
        return str(self.d["metadata"].get("namespace") or "")

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    def record(self, event_type: str, reason: str, message: str) -> None:
        self.controller.events.record(self.stored, event_type, reason, message)

    # ----- replica sets ---------------------------------------------------------------------------

    def fresh(self, rs: Obj | None) -> Obj | None:
        """Our latest copy of `rs` (after any write this sync made)."""
        if rs is None:
            return None
        uid = rs["metadata"].get("uid")
        return next((r for r in self.rss if r["metadata"].get("uid") == uid), rs)

    def fresh_all(self, rss: list[Obj]) -> list[Obj]:
        return [self.fresh(rs) or rs for rs in rss]

    def remember(self, rs: Obj) -> Obj:
        uid = rs["metadata"].get("uid")
        self.rss = [r for r in self.rss if r["metadata"].get("uid") != uid] + [rs]
        return rs

    async def update_rs(self, rs: Obj) -> Obj:
        return self.remember(await self.client.update(REPLICASETS, rs))

    async def scale_and_record(self, rs: Obj, new_scale: int) -> tuple[bool, Obj]:
        rs = self.fresh(rs) or rs
        if replicas(rs) == new_scale:
            return False, rs
        return await self.scale_rs(rs, new_scale)

    async def scale_rs(self, rs: Obj, new_scale: int) -> tuple[bool, Obj]:
        """Set the RS size and its desired/max-replicas annotations; an event when the size moved."""
        rs = self.fresh(rs) or rs
        desired, most = replicas(self.d), replicas(self.d) + max_surge(self.d)
        resize = replicas(rs) != new_scale
        if not resize and not replicas_annotations_need_update(rs, desired, most):
            return False, rs
        old_scale, changed = replicas(rs), copy.deepcopy(rs)
        changed.setdefault("spec", {})["replicas"] = new_scale
        set_replicas_annotations(changed, desired, most)
        updated = await self.update_rs(changed)
        if resize:
            direction = "up" if new_scale > old_scale else "down"
            self.record("Normal", "ScalingReplicaSet",
                        f"Scaled {direction} replica set {rs['metadata']['name']} from {old_scale} to {new_scale}")
        return resize, updated

    async def create_rs(self, rs: Obj) -> Obj:
        return self.remember(await self.client.create(REPLICASETS, rs, self.namespace))

    async def delete_rs(self, rs: Obj) -> None:
        await self.client.delete(REPLICASETS, rs["metadata"]["name"], self.namespace)
        self.rss = [r for r in self.rss if r["metadata"].get("uid") != rs["metadata"].get("uid")]

    # ----- the deployment ------------------------------------------------------------------------

    def set_revision(self, revision: str | None) -> bool:
        if revision is None or annotations_of(self.d).get(REVISION) == revision:
            return False
        self.d.setdefault("metadata", {}).setdefault("annotations", {})[REVISION] = revision
        return True

    async def update_status(self) -> None:
        """Persist the working copy's revision annotation and status, each only if it changed."""
        wanted = annotations_of(self.d).get(REVISION)
        if wanted is not None and annotations_of(self.stored).get(REVISION) != wanted:
            patch = {"metadata": {"annotations": {REVISION: wanted},
                                  "resourceVersion": self.stored["metadata"]["resourceVersion"]}}
            self._stored(await self.client.patch(DEPLOYMENTS, self.name, patch, self.namespace))
        status = wire(self.d.get("status") or {})
        if not same_status(self.stored.get("status"), status):
            self._stored(await self.client.update(DEPLOYMENTS, {**self.stored, "status": status},
                                                  subresource="status"))

    async def update_deployment(self) -> None:
        """A full update of the working copy (the deprecated rollback annotation path)."""
        self._stored(await self.client.update(DEPLOYMENTS, self.d))
        self.d = copy.deepcopy(self.stored)

    def _stored(self, obj: Any) -> None:
        self.stored = obj
        self.d["metadata"]["resourceVersion"] = obj["metadata"]["resourceVersion"]
        self.d["metadata"]["generation"] = obj["metadata"].get("generation")
