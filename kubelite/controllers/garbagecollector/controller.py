"""The garbage collector: deletes objects whose owners are gone, and carries out the foreground and
orphan deletion policies (upstream's pkg/controller/garbagecollector).

Data flow: one informer per tracked kind feeds `Graph` (ownership edges by uid) from its handlers;
the graph says which uids to look at. Two queues of uids:
- attempt-to-delete (`self.queue`): an object whose owner may be gone, an owner waiting for its
  dependents (foreground), or a virtual owner to verify against the API;
- attempt-to-orphan (`self.orphan_queue`): an owner deleted with propagationPolicy Orphan.

Invariants: an owner is declared absent only after a live GET (or a cached confirmation that its uid
is gone, see `Graph.absent`); every write is guarded: deletes by uid and resourceVersion preconditions
(on a conflict the live object's ownerReferences must be unchanged to proceed), metadata patches by
the resourceVersion they were computed from (a conflict re-reads the object and recomputes).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any, ClassVar

from kubelite.client import Handlers, WorkQueue, object_key, run_workers
from kubelite.controllers.base import Controller
from kubelite.controllers.garbagecollector import decide
from kubelite.controllers.garbagecollector.graph import FOREGROUND, ORPHAN, Changes, Graph, Identity, Node
from kubelite.controllers.garbagecollector.kinds import gc_resources, resolve
from kubelite.objects.errors import Conflict, NotFound
from kubelite.objects.registry import ResourceType

Obj = dict[str, Any]
VIRTUAL_RECHECK = 1.0  # seconds before looking again at an owner the API has but our informer not yet
PATCH_ATTEMPTS = 5
ORPHAN_CONCURRENCY = 16


class RetryLater(Exception):
    """The object changed under us; the work queue retries with backoff."""


class GarbageCollector(Controller):
    name = "garbagecollector"
    workers: ClassVar[int] = 20  # upstream's --concurrent-gc-syncs default
    orphan_workers: ClassVar[int] = 4

    def setup(self) -> None:
        self.graph = Graph()
        self.orphan_queue = WorkQueue("garbagecollector-orphan")
        for rt in gc_resources():
            self.informers.informer(rt).add_handlers(self._handlers())

    def _handlers(self) -> Handlers:
        return Handlers(on_add=lambda obj: self._schedule(self.graph.observe(obj)),
                        on_update=lambda old, new: self._schedule(self.graph.observe(new)),
                        on_delete=lambda obj: self._schedule(self.graph.forget(obj)))

    def _schedule(self, changes: Changes) -> None:
        for uid in changes.attempt_delete:
            self.queue.add(uid)
        for uid in changes.attempt_orphan:
            self.orphan_queue.add(uid)
        for dependent, ref in changes.invalid_namespace:
            self.events.record(_stub(dependent), "Warning", "OwnerRefInvalidNamespace",
                               f"ownerRef {_describe(ref, dependent.namespace)} does not exist in namespace "
                               f"{dependent.namespace!r}")

    async def run(self) -> None:
        await asyncio.gather(run_workers(self.queue, self.sync, workers=self.workers),
                             run_workers(self.orphan_queue, self.sync_orphan, workers=self.orphan_workers))

    def stop(self) -> None:
        super().stop()
        self.orphan_queue.shutdown()

    # ----- attempt to delete -------------------------------------------------------------------

    async def sync(self, key: str) -> None:
        node = self.graph.nodes.get(key)
        if node is None:
            return
        if not node.observed:
            await self._verify_virtual(node)
            return
        if node.being_deleted and not node.deleting_dependents:
            return  # a one-way trip: its dependents are looked at when it is gone
        rt = _rt(node.identity)
        latest = self._cached(rt, node.identity)
        if rt is None or latest is None:
            return
        if node.deleting_dependents:
            await self._finish_foreground(node, rt, latest)
            return
        refs = decide.owner_refs(latest)
        if not refs:
            return
        classified = await self._classify(latest, refs)
        deleting_deps = any(dep.deleting_dependents for dep in self.graph.dependents_of(node.uid))
        verdict = decide.verdict(latest, classified, has_dependents=bool(node.dependents),
                                 dependent_deleting_dependents=deleting_deps)
        if verdict.action != "none":
            self.log.debug("%s %s: %s", rt.kind, object_key(latest), verdict.reason)
        await self._carry_out(verdict, rt, latest)

    async def _verify_virtual(self, node: Node) -> None:
        """An owner named by references but never observed: does the API have it?"""
        rt = _rt(node.identity)
        if rt is None:
            return
        live = await self._get(rt, node.identity)
        if live is None:
            self._schedule(self.graph.confirm_absent(node.uid))
            return
        # the API has it and our informer will deliver it: look again later (upstream requeues too)
        self.queue.add_after(node.uid, VIRTUAL_RECHECK)

    async def _classify(self, latest: Obj, refs: list[Obj]) -> decide.Classified:
        classified = decide.Classified()
        namespace = str(latest["metadata"].get("namespace") or "")
        for ref in refs:
            rt = resolve(str(ref.get("apiVersion") or ""), str(ref.get("kind") or ""))
            if rt is None or (rt.namespaced and not namespace):
                classified.add("unresolvable", ref)
                continue
            owner_ns = namespace if rt.namespaced else ""
            if (owner_ns, str(ref.get("uid"))) in self.graph.absent:
                classified.add("dangling", ref)
                continue
            owner = await self._get(rt, Identity(rt.api_version, rt.kind, str(ref.get("name") or ""),
                                                 str(ref.get("uid")), owner_ns), check_uid=False)
            category = decide.classify_owner(ref, owner)
            if category == "dangling":
                self.graph.absent.add(owner_ns, str(ref.get("uid")))
            classified.add(category, ref)
        return classified

    async def _carry_out(self, verdict: decide.Verdict, rt: ResourceType, latest: Obj) -> None:
        if verdict.action == "remove_refs":
            uids = verdict.remove_uids
            await self._patch(rt, latest, lambda obj: decide.without_owners_patch(obj, uids))
        elif verdict.action == "delete":
            if verdict.unblock_first:
                latest = await self._patch(rt, latest, decide.unblocked_patch) or latest
            await self._delete(rt, latest, verdict.propagation)

    async def _finish_foreground(self, node: Node, rt: ResourceType, latest: Obj) -> None:
        blocking = self.graph.blocking_dependents(node.uid)
        if not blocking:
            await self._patch(rt, latest, lambda obj: decide.without_finalizer_patch(obj, FOREGROUND))
            return
        for dep in blocking:
            if not dep.deleting_dependents:
                self.queue.add(dep.uid)

    # ----- attempt to orphan -------------------------------------------------------------------

    async def sync_orphan(self, key: str) -> None:
        node = self.graph.nodes.get(key)
        if node is None or not node.observed:
            return
        rt = _rt(node.identity)
        latest = self._cached(rt, node.identity)
        if rt is None or latest is None:
            return
        limit = asyncio.Semaphore(ORPHAN_CONCURRENCY)

        async def release(dep: Node) -> None:
            dep_rt = _rt(dep.identity)
            dep_obj = self._cached(dep_rt, dep.identity)
            if dep_rt is None or dep_obj is None:
                return
            async with limit:
                await self._patch(dep_rt, dep_obj, lambda obj: decide.without_owners_patch(obj, {node.uid}))

        results = await asyncio.gather(*(release(dep) for dep in self.graph.dependents_of(node.uid)),
                                       return_exceptions=True)
        failures = [r for r in results if isinstance(r, BaseException)]
        if failures:
            raise RetryLater(f"orphaning dependents of {node.identity.kind} {node.identity.name}: {failures[0]}")
        await self._patch(rt, latest, lambda obj: decide.without_finalizer_patch(obj, ORPHAN))

    # ----- guarded writes ----------------------------------------------------------------------

    async def _patch(self, rt: ResourceType, obj: Obj, make: Callable[[Obj], Obj | None]) -> Obj | None:
        """Apply the merge patch `make` computes from `obj`; on a conflict re-read and recompute.
        Returns the patched object, or None if there was nothing to do or the object is gone."""
        identity = Identity.of(obj)
        for _ in range(PATCH_ATTEMPTS):
            body = make(obj)
            if body is None:
                return None
            try:
                return await self.client.patch(rt, identity.name, body, identity.namespace or None)
            except NotFound:
                return None
            except Conflict:
                fresh = await self._get(rt, identity)
                if fresh is None:
                    return None
                obj = fresh
        raise RetryLater(f"{rt.kind} {identity.name} keeps changing")

    async def _delete(self, rt: ResourceType, latest: Obj, propagation: str) -> None:
        identity = Identity.of(latest)
        namespace = identity.namespace or None
        seen = {"uid": identity.uid, "resourceVersion": latest["metadata"]["resourceVersion"]}
        try:
            await self.client.delete(rt, identity.name, namespace, propagation=propagation, preconditions=seen)
            return
        except NotFound:
            return
        except Conflict:
            live = await self._get(rt, identity)
        if live is None:
            return
        if decide.owner_refs(live) != decide.owner_refs(latest):
            raise RetryLater(f"{rt.kind} {identity.name}: ownerReferences changed; deciding again")
        with contextlib.suppress(NotFound):  # only other fields changed (a pod's status): the decision stands
            await self.client.delete(rt, identity.name, namespace, propagation=propagation,
                                     preconditions={"uid": identity.uid})

    # ----- reads ---------------------------------------------------------------------------------

    def _cached(self, rt: ResourceType | None, identity: Identity) -> Obj | None:
        if rt is None:
            return None
        key = f"{identity.namespace}/{identity.name}" if identity.namespace else identity.name
        obj = self.informers.informer(rt).get(key)
        if obj is None or obj.get("metadata", {}).get("uid") != identity.uid:
            return None
        return obj

    async def _get(self, rt: ResourceType, identity: Identity, *, check_uid: bool = True) -> Obj | None:
        """The live object at the identity's coordinates (None if absent or, when checked, another uid)."""
        try:
            obj: Obj = await self.client.get(rt, identity.name, identity.namespace or None)
        except NotFound:
            return None
        if check_uid and obj.get("metadata", {}).get("uid") != identity.uid:
            return None
        return obj


def _rt(identity: Identity) -> ResourceType | None:
    return resolve(identity.api_version, identity.kind)


def _stub(identity: Identity) -> Obj:
    meta = {"name": identity.name, "uid": identity.uid}
    if identity.namespace:
        meta["namespace"] = identity.namespace
    return {"apiVersion": identity.api_version, "kind": identity.kind, "metadata": meta}


def _describe(ref: Obj, namespace: str) -> str:
    return (f"[{ref.get('apiVersion')}/{ref.get('kind')}, namespace: {namespace}, name: {ref.get('name')}, "
            f"uid: {ref.get('uid')}]")
