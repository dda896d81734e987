"""The namespace controller: empties a namespace that is being deleted, then lets it go.

Flow: the namespace informer enqueues namespaces with a deletionTimestamp, and the pod informer
enqueues a terminating namespace whenever one of its pods disappears, so pods that needed their
grace period are noticed at once. `sync` re-reads the namespace live and, while it still carries
our `kubernetes` spec finalizer, deletes its content in phases:
  1. pods (upstream's OrderedNamespaceDeletion, stable since 1.34),
  2. every other namespaced kind the API can delete,
  3. events, so what happened during the teardown stays visible until the end,
a phase starting only once the previous one is empty. Deletes use propagationPolicy Background
(the namespace controller removes everything itself; no orphan finalizers). What remains is
written to the status conditions, as upstream (NamespaceContentRemaining,
NamespaceFinalizersRemaining, NamespaceDeletionContentFailure, ...), and the namespace is looked at
again with backoff. When nothing remains, `kubernetes` is removed from spec.finalizers through the
`finalize` subresource and the API server deletes the namespace.

Items already terminating are not deleted again, so waiting costs one list per phase.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, ClassVar

from kubelite.client import Handlers
from kubelite.client.resources import NAMESPACES, PODS
from kubelite.controllers.base import Controller
from kubelite.objects.errors import Conflict, MethodNotAllowed, NotFound, StatusError
from kubelite.objects.registry import REGISTRY, ResourceType

Obj = dict[str, Any]
FINALIZER = "kubernetes"
REQUEUE_BASE, REQUEUE_MAX = 0.1, 5.0
CONDITION_TYPES = ("NamespaceDeletionDiscoveryFailure", "NamespaceDeletionGroupVersionParsingFailure",
                   "NamespaceDeletionContentFailure", "NamespaceContentRemaining", "NamespaceFinalizersRemaining")
OK_REASONS = {
    "NamespaceDeletionDiscoveryFailure": ("ResourcesDiscovered", "All resources successfully discovered"),
    "NamespaceDeletionGroupVersionParsingFailure": ("ParsedGroupVersions", "All legacy kube types successfully parsed"),
    "NamespaceDeletionContentFailure": ("ContentDeleted", "All content successfully deleted, may be waiting on "
                                                          "finalization"),
    "NamespaceContentRemaining": ("ContentRemoved", "All content successfully removed"),
    "NamespaceFinalizersRemaining": ("ContentRemoved", "All content successfully removed"),
}


# ----- pure decisions --------------------------------------------------------------------------

def deletion_phases(resources: tuple[ResourceType, ...] = REGISTRY.resources) -> list[list[ResourceType]]:
    """Namespaced kinds that can be deleted, one entry per storage (events are served twice), in
    the order they are emptied: pods, everything else, events."""
    seen: set[str] = set()
    kinds = []
    for rt in resources:
        if rt.namespaced and "delete" in rt.verbs and "list" in rt.verbs and rt.storage_key not in seen:
            seen.add(rt.storage_key)
            kinds.append(rt)
    pods = [rt for rt in kinds if (rt.group, rt.plural) == ("", "pods")]
    events = [rt for rt in kinds if rt.storage_key == "events"]
    rest = [rt for rt in kinds if rt not in pods and rt not in events]
    return [phase for phase in (pods, rest, events) if phase]


@dataclass
class Remaining:
    """What a pass over the namespace left behind."""

    counts: dict[str, int] = field(default_factory=dict)  # "pods." -> n, as upstream's resource.group
    finalizers: dict[str, int] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)

    def add(self, rt: ResourceType, items: list[Obj]) -> None:
        if not items:
            return
        self.counts[f"{rt.plural}.{rt.group}"] = len(items)
        for item in items:
            for finalizer in (item.get("metadata") or {}).get("finalizers") or []:
                self.finalizers[finalizer] = self.finalizers.get(finalizer, 0) + 1

    @property
    def empty(self) -> bool:
        return not self.counts and not self.errors


def failing_conditions(remaining: Remaining) -> dict[str, tuple[str, str]]:
    """condition type -> (reason, message) for each condition that is True."""
    failing = {}
    if remaining.errors:
        failing["NamespaceDeletionContentFailure"] = (
            "ContentDeletionFailed",
            f"Failed to delete all resource types, {len(remaining.errors)} remaining: "
            f"{', '.join(sorted(remaining.errors))}")
    if remaining.counts:
        parts = sorted(f"{name} has {n} resource instances" for name, n in remaining.counts.items())
        failing["NamespaceContentRemaining"] = ("SomeResourcesRemain",
                                                f"Some resources are remaining: {', '.join(parts)}")
    if remaining.finalizers:
        parts = sorted(f"{name} in {n} resource instances" for name, n in remaining.finalizers.items())
        failing["NamespaceFinalizersRemaining"] = ("SomeFinalizerRemain",
                                                   f"Some finalizers are remaining: {', '.join(parts)}")
    return failing


def updated_conditions(old: list[Obj], remaining: Remaining, now: str) -> list[Obj] | None:
    """The status conditions after this pass, or None if nothing changed (upstream's updateConditions:
    every type present, True with the problem or False with the "ok" wording)."""
    failing = failing_conditions(remaining)
    conditions = [dict(c) for c in old]
    changed = False
    for ctype in CONDITION_TYPES:
        status, (reason, message) = ("True", failing[ctype]) if ctype in failing else ("False", OK_REASONS[ctype])
        current = next((c for c in conditions if c.get("type") == ctype), None)
        if current is None:
            conditions.append({"type": ctype, "status": status, "lastTransitionTime": now, "reason": reason,
                               "message": message})
            changed = True
        elif (current.get("status"), current.get("reason"), current.get("message")) != (status, reason, message):
            if current.get("status") != status:
                current["lastTransitionTime"] = now
            current.update(status=status, reason=reason, message=message)
            changed = True
    return conditions if changed else None


def finalized(namespace: Obj) -> Obj:
    """The namespace as sent to `finalize`: our finalizer gone from spec.finalizers."""
    spec = dict(namespace.get("spec") or {})
    spec["finalizers"] = [f for f in spec.get("finalizers") or [] if f != FINALIZER]
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": namespace["metadata"], "spec": spec}


def requeue_delay(attempt: int) -> float:
    return min(REQUEUE_MAX, REQUEUE_BASE * (2 ** attempt))


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# ----- the controller --------------------------------------------------------------------------

class NamespaceController(Controller):
    name = "namespace"
    workers: ClassVar[int] = 5

    def setup(self) -> None:
        self.namespaces = self.informers.informer(NAMESPACES)
        self.namespaces.add_handlers(self.enqueue_handlers(_terminating_name))
        self.informers.informer(PODS).add_handlers(Handlers(on_delete=self._pod_gone))
        self.phases = deletion_phases()
        self._attempts: dict[str, int] = {}

    def _pod_gone(self, pod: Obj) -> None:
        namespace = self.namespaces.get(str(pod.get("metadata", {}).get("namespace")))
        if namespace is not None and _terminating_name(namespace):
            self.queue.add(namespace["metadata"]["name"])

    async def sync(self, key: str) -> None:
        try:
            namespace: Obj = await self.client.get(NAMESPACES, key)
        except NotFound:
            self._attempts.pop(key, None)
            return
        if not namespace["metadata"].get("deletionTimestamp") or \
                FINALIZER not in (namespace.get("spec") or {}).get("finalizers", []):
            self._attempts.pop(key, None)
            return
        remaining = await self._delete_content(key)
        namespace = await self._write_conditions(namespace, remaining)
        if not remaining.empty:
            attempt = self._attempts.get(key, 0)
            self._attempts[key] = attempt + 1
            self.queue.add_after(key, requeue_delay(attempt))
            return
        self._attempts.pop(key, None)
        await self._finalize(namespace)

    async def _delete_content(self, namespace: str) -> Remaining:
        remaining = Remaining()
        for phase in self.phases:
            results = await asyncio.gather(*(self._empty(rt, namespace) for rt in phase), return_exceptions=True)
            for rt, result in zip(phase, results, strict=True):
                if isinstance(result, StatusError):
                    remaining.errors.append(f"{rt.group_resource}: {result.message}")
                elif isinstance(result, BaseException):
                    raise result
                else:
                    remaining.add(rt, result)
            if not remaining.empty:
                break  # later phases wait for this one
        return remaining

    async def _empty(self, rt: ResourceType, namespace: str) -> list[Obj]:
        """Delete what is not yet being deleted; returns what is still there afterwards."""
        items = await self._list(rt, namespace)
        fresh = [item for item in items if not item["metadata"].get("deletionTimestamp")]
        if not fresh:
            return items
        if "deletecollection" in rt.verbs:
            await self.client.request("DELETE", rt.path(namespace), body=_background())
        else:
            for item in fresh:
                try:
                    await self.client.delete(rt, item["metadata"]["name"], namespace, propagation="Background")
                except NotFound:
                    continue
        return await self._list(rt, namespace)

    async def _list(self, rt: ResourceType, namespace: str) -> list[Obj]:
        try:
            listed = await self.client.list(rt, namespace)
        except (NotFound, MethodNotAllowed):
            return []
        return list(listed.get("items") or [])

    async def _write_conditions(self, namespace: Obj, remaining: Remaining) -> Obj:
        status = namespace.get("status") or {}
        conditions = updated_conditions(status.get("conditions") or [], remaining, _now())
        if conditions is None:
            return namespace
        body = {**namespace, "status": {**status, "phase": "Terminating", "conditions": conditions}}
        try:
            updated: Obj = await self.client.update(NAMESPACES, body, subresource="status")
        except (Conflict, NotFound) as exc:  # the next pass writes them again
            self.log.debug("namespace %s: conditions not written: %s", namespace["metadata"]["name"], exc)
            return namespace
        return updated

    async def _finalize(self, namespace: Obj) -> None:
        name, uid = namespace["metadata"]["name"], namespace["metadata"].get("uid")
        for _ in range(3):
            try:
                await self.client.update(NAMESPACES, finalized(namespace), subresource="finalize")
                return
            except NotFound:
                if await self._exists(name, uid):  # the subresource itself is missing: keep retrying
                    raise
                return
            except Conflict:
                try:
                    namespace = await self.client.get(NAMESPACES, name)
                except NotFound:
                    return
                if namespace["metadata"].get("uid") != uid:
                    return
        raise Conflict(f"namespace {name} kept changing while being finalized")


    async def _exists(self, name: str, uid: str | None) -> bool:
        try:
            current = await self.client.get(NAMESPACES, name)
        except NotFound:
            return False
        return bool(current["metadata"].get("uid") == uid)


def _terminating_name(namespace: Obj) -> str | None:
    meta = namespace.get("metadata") or {}
    return str(meta["name"]) if meta.get("deletionTimestamp") else None


def _background() -> Obj:
    return {"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": "Background"}
