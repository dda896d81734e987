"""The ReplicaSet controller: keeps `spec.replicas` active pods matching a ReplicaSet's selector.

Data flow: ReplicaSet and Pod informer events only enqueue the owning ReplicaSet's key. `sync`
claims pods (adopts orphans that match the selector, releases owned pods that stopped matching),
creates pods from the template or deletes the least useful ones, then writes status (replicas,
fullyLabeledReplicas, readyReplicas, availableReplicas, observedGeneration, ReplicaFailure).

Invariants, as upstream's pkg/controller/replicaset:
- expectations: after creating or deleting pods, the ReplicaSet does not create or delete again
  until the informer has observed every one of those changes (or 5 minutes passed), so a stale
  pod cache never causes a double create or delete;
- creates are burst-limited (500 per sync) and go in slow-start batches (1, 2, 4, ...) that stop
  at the first failure, so a quota or admission error costs one request, not hundreds;
- terminal pods (Succeeded/Failed) and pods being deleted are not counted;
- pods to delete are ranked with `deletion_order` (unassigned, pending, not ready, ... first).
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import functools
import math
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from kubelite.client.resources import PODS, REPLICASETS
from kubelite.controllers.base import Controller, Obj, split_key
from kubelite.objects.errors import Invalid, NotFound, StatusError
from kubelite.objects.selectors import LabelSelector, selector_from_dict

BURST_REPLICAS = 500
SLOW_START_INITIAL_BATCH = 1
EXPECTATIONS_TTL = 300.0
STATUS_UPDATE_RETRIES = 1
PHASE_ORDINAL = {"Pending": 0, "Unknown": 1, "Running": 2}
# shared informers: index names are global, so they carry our prefix (same functions in both controllers)
NAMESPACE_INDEX = "workloads.kubelite.io/namespace"
CONTROLLER_UID_INDEX = "workloads.kubelite.io/controller-uid"


# ----- pod predicates ----------------------------------------------------------------------------

def parse_time(value: Any) -> float | None:
    """Seconds since the epoch of an RFC 3339 timestamp, None when absent or unreadable."""
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def rfc3339(moment: float | None = None) -> str:
    return datetime.fromtimestamp(time.time() if moment is None else moment, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def is_pod_active(pod: Obj) -> bool:
    phase = (pod.get("status") or {}).get("phase")
    return phase not in ("Succeeded", "Failed") and not (pod.get("metadata") or {}).get("deletionTimestamp")


def ready_condition(pod: Obj) -> Obj | None:
    for cond in (pod.get("status") or {}).get("conditions") or []:
        if cond.get("type") == "Ready":
            return cond  # type: ignore[no-any-return]
    return None


def is_pod_ready(pod: Obj) -> bool:
    cond = ready_condition(pod)
    return cond is not None and cond.get("status") == "True"


def is_pod_available(pod: Obj, min_ready_seconds: int, now: float) -> bool:
    """Ready for at least minReadySeconds (upstream podutil.IsPodAvailable)."""
    if not is_pod_ready(pod):
        return False
    if not min_ready_seconds:
        return True
    since = parse_time((ready_condition(pod) or {}).get("lastTransitionTime"))
    return since is not None and since + min_ready_seconds < now


def controller_ref(obj: Obj) -> Obj | None:
    for ref in (obj.get("metadata") or {}).get("ownerReferences") or []:
        if ref.get("controller"):
            return ref  # type: ignore[no-any-return]
    return None


def new_controller_ref(owner: Obj) -> Obj:
    meta = owner["metadata"]
    return {"apiVersion": owner.get("apiVersion") or "apps/v1", "kind": owner["kind"], "name": meta["name"],
            "uid": meta["uid"], "controller": True, "blockOwnerDeletion": True}


def labels_of(obj: Obj) -> dict[str, str]:
    return (obj.get("metadata") or {}).get("labels") or {}


# ----- which pods to delete ----------------------------------------------------------------------

def _restarts(pod: Obj) -> int:
    return max((int(c.get("restartCount") or 0) for c in (pod.get("status") or {}).get("containerStatuses") or []),
               default=0)


def _deletion_cost(pod: Obj) -> int:
    raw = ((pod.get("metadata") or {}).get("annotations") or {}).get("controller.kubernetes.io/pod-deletion-cost")
    try:
        return int(raw) if raw is not None else 0
    except ValueError:
        return 0


def _log_rank_diff(t1: float, t2: float, now: float) -> int:
    d1, d2 = now - t1, now - t2
    r1 = int(math.log2(d1 * 1e9)) if d1 > 0 else -1  # Go compares durations in nanoseconds
    r2 = int(math.log2(d2 * 1e9)) if d2 > 0 else -1
    return r1 - r2


def _compare_times(t1: float | None, t2: float | None, uids: tuple[str, str], now: float) -> int:
    """Newer first (empty before anything), in logarithmic buckets with uid tie-breaks (upstream's
    LogarithmicScaleDown), so equivalent pods are not always deleted in creation order."""
    if t1 is None or t2 is None:
        return -1 if t1 is None else 1
    diff = _log_rank_diff(t1, t2, now)
    if diff == 0:
        return -1 if uids[0] < uids[1] else 1
    return -1 if diff < 0 else 1


def _less(a: tuple[Obj, int], b: tuple[Obj, int], now: float) -> bool:
    """Upstream ActivePodsWithRanks.Less: should `a` be deleted before `b`?"""
    (pa, rank_a), (pb, rank_b) = a, b
    node_a, node_b = (pa.get("spec") or {}).get("nodeName") or "", (pb.get("spec") or {}).get("nodeName") or ""
    if node_a != node_b and (not node_a or not node_b):
        return not node_a
    phase_a = PHASE_ORDINAL.get((pa.get("status") or {}).get("phase") or "", 0)
    phase_b = PHASE_ORDINAL.get((pb.get("status") or {}).get("phase") or "", 0)
    if phase_a != phase_b:
        return phase_a < phase_b
    if is_pod_ready(pa) != is_pod_ready(pb):
        return not is_pod_ready(pa)
    if _deletion_cost(pa) != _deletion_cost(pb):
        return _deletion_cost(pa) < _deletion_cost(pb)
    if rank_a != rank_b:
        return rank_a > rank_b
    uids = (str(pa["metadata"].get("uid") or ""), str(pb["metadata"].get("uid") or ""))
    if is_pod_ready(pa) and is_pod_ready(pb):
        ready_a = parse_time((ready_condition(pa) or {}).get("lastTransitionTime"))
        ready_b = parse_time((ready_condition(pb) or {}).get("lastTransitionTime"))
        if ready_a != ready_b:
            return _compare_times(ready_a, ready_b, uids, now) < 0
    if _restarts(pa) != _restarts(pb):
        return _restarts(pa) > _restarts(pb)
    created_a = parse_time(pa["metadata"].get("creationTimestamp"))
    created_b = parse_time(pb["metadata"].get("creationTimestamp"))
    if created_a != created_b:
        return _compare_times(created_a, created_b, uids, now) < 0
    return False


def deletion_order(pods: list[Obj], related: Iterable[Obj], *, now: float | None = None) -> list[Obj]:
    """`pods` sorted so the ones to delete first come first. A pod's rank is the number of active
    related pods (of the same owner's ReplicaSets) on its node: doubled-up pods go first."""
    now = time.time() if now is None else now
    on_node: dict[str, int] = {}
    for pod in related:
        if is_pod_active(pod):
            node = (pod.get("spec") or {}).get("nodeName") or ""
            on_node[node] = on_node.get(node, 0) + 1
    ranked = [(pod, on_node.get((pod.get("spec") or {}).get("nodeName") or "", 0)) for pod in pods]

    def compare(a: tuple[Obj, int], b: tuple[Obj, int]) -> int:
        return -1 if _less(a, b, now) else (1 if _less(b, a, now) else 0)

    return [pod for pod, _ in sorted(ranked, key=functools.cmp_to_key(compare))]


# ----- expectations ------------------------------------------------------------------------------

@dataclass
class _Expected:
    adds: int
    deletes: int
    at: float
    deleting: set[str] = field(default_factory=set)


class Expectations:
    """Creates and deletes a controller waits to observe (upstream UIDTrackingControllerExpectations:
    deletions are tracked by pod key, so a pod seen first as terminating and then as deleted counts once)."""

    def __init__(self, ttl: float = EXPECTATIONS_TTL, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl, self.clock = ttl, clock
        self._by_key: dict[str, _Expected] = {}

    def satisfied(self, key: str) -> bool:
        exp = self._by_key.get(key)
        if exp is None:
            return True
        return (exp.adds <= 0 and exp.deletes <= 0) or self.clock() - exp.at > self.ttl

    def expect_creations(self, key: str, count: int) -> None:
        self._by_key[key] = _Expected(count, 0, self.clock())

    def expect_deletions(self, key: str, pod_keys: list[str]) -> None:
        self._by_key[key] = _Expected(0, len(pod_keys), self.clock(), set(pod_keys))

    def creation_observed(self, key: str) -> None:
        exp = self._by_key.get(key)
        if exp is not None:
            exp.adds -= 1

    def deletion_observed(self, key: str, pod_key: str) -> None:
        exp = self._by_key.get(key)
        if exp is not None and pod_key in exp.deleting:
            exp.deleting.discard(pod_key)
            exp.deletes -= 1

    def delete(self, key: str) -> None:
        self._by_key.pop(key, None)


async def slow_start_batch(count: int, call: Callable[[], Awaitable[Any]], *,
                           initial: int = SLOW_START_INITIAL_BATCH) -> tuple[int, BaseException | None]:
    """Call `call` `count` times in concurrent batches of 1, 2, 4, ...; stop after the first batch
    with a failure. Returns (successful calls, first error)."""
    remaining, successes, batch = count, 0, min(count, initial)
    while batch > 0:
        results = await asyncio.gather(*(call() for _ in range(batch)), return_exceptions=True)
        errors = [r for r in results if isinstance(r, Exception)]
        successes += batch - len(errors)
        if errors:
            return successes, errors[0]
        remaining -= batch
        batch = min(2 * batch, remaining)
    return successes, None


# ----- status ------------------------------------------------------------------------------------

def calculate_status(rs: Obj, pods: list[Obj], manage_error: BaseException | None, *, now: float) -> Obj:
    """The ReplicaSet status the claimed active `pods` give (observedGeneration is set on write)."""
    spec = rs.get("spec") or {}
    status = {k: v for k, v in copy.deepcopy(rs.get("status") or {}).items() if k != "observedGeneration"}
    template_labels = ((spec.get("template") or {}).get("metadata") or {}).get("labels") or {}
    min_ready = int(spec.get("minReadySeconds") or 0)
    fully = sum(1 for p in pods if all(labels_of(p).get(k) == v for k, v in template_labels.items()))
    ready = [p for p in pods if is_pod_ready(p)]
    available = sum(1 for p in ready if is_pod_available(p, min_ready, now))
    conditions = [c for c in status.get("conditions") or [] if c.get("type") != "ReplicaFailure"]
    failure = next((c for c in status.get("conditions") or [] if c.get("type") == "ReplicaFailure"), None)
    if manage_error is not None and failure is None:
        diff = len(pods) - int(spec.get("replicas") or 0)
        reason = "FailedCreate" if diff < 0 else ("FailedDelete" if diff > 0 else "")
        failure = {"type": "ReplicaFailure", "status": "True", "lastTransitionTime": rfc3339(now),
                   "reason": reason, "message": str(manage_error)}
    elif manage_error is None:
        failure = None
    status.update(replicas=len(pods), fullyLabeledReplicas=fully, readyReplicas=len(ready),
                  availableReplicas=available, conditions=conditions + ([failure] if failure else []))
    return wire_status(status)


def wire_status(status: Obj) -> Obj:
    """Status as the API serializes it: zero counts and empty lists omitted, `replicas` always."""
    out = {k: v for k, v in status.items() if v not in (0, None, [], "")}
    out["replicas"] = int(status.get("replicas") or 0)
    return out


def status_unchanged(rs: Obj, status: Obj) -> bool:
    """Upstream skips the write when counts and conditions match and the generation was observed."""
    current = rs.get("status") or {}
    counted = wire_status({k: v for k, v in current.items() if k != "observedGeneration"})
    return counted == status and current.get("observedGeneration") == (rs.get("metadata") or {}).get("generation")


def pod_from_template(rs: Obj) -> Obj:
    """A pod for `rs` (upstream GetPodFromTemplate); the API generates its name."""
    template = (rs.get("spec") or {}).get("template") or {}
    tmeta = template.get("metadata") or {}
    if not tmeta.get("labels"):
        raise ValueError("unable to create pods, no labels")
    name = rs["metadata"]["name"]
    meta: Obj = {"generateName": f"{name}-", "namespace": rs["metadata"].get("namespace"),
                 "labels": dict(tmeta["labels"]), "ownerReferences": [new_controller_ref(rs)]}
    for key in ("annotations", "finalizers"):
        if tmeta.get(key):
            meta[key] = copy.deepcopy(tmeta[key])
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": copy.deepcopy(template.get("spec") or {})}


def namespace_terminating(exc: BaseException) -> bool:
    if not isinstance(exc, StatusError):
        return False
    causes = exc.details.get("causes") or []
    return any(c.get("reason") == "NamespaceTerminating" for c in causes) or \
        "because it is being terminated" in exc.message


def pod_key(pod: Obj) -> str:
    return f"{pod['metadata'].get('namespace')}/{pod['metadata']['name']}"


def by_namespace(obj: Obj) -> list[str]:
    return [str((obj.get("metadata") or {}).get("namespace") or "")]


def by_controller_uid(obj: Obj) -> list[str]:
    ref = controller_ref(obj)
    return [str(ref["uid"])] if ref and ref.get("uid") else []


def selector_or_none(obj: Obj) -> LabelSelector | None:
    try:
        return selector_from_dict((obj.get("spec") or {}).get("selector"))
    except StatusError:
        return None


# ----- claiming (upstream ControllerRefManager) --------------------------------------------------

class Claimer:
    """Adopts matching orphans and releases non-matching owned objects for one owner, in one pass.

    `can_adopt` is awaited once, before the first adoption, to re-read the owner uncached: an owner
    deleted (or replaced) since the cache was read must not adopt anything."""

    def __init__(self, owner: Obj, selector: LabelSelector, *, patch: Callable[[Obj, Obj], Awaitable[Any]],
                 can_adopt: Callable[[], Awaitable[None]]) -> None:
        self.owner, self.selector, self.patch, self.can_adopt = owner, selector, patch, can_adopt
        self._adopt_checked = False

    @property
    def uid(self) -> str:
        return str(self.owner["metadata"]["uid"])

    async def claim(self, objs: list[Obj]) -> list[Obj]:
        claimed, errors = [], []
        for obj in objs:
            try:
                if await self._claim_one(obj):
                    claimed.append(obj)
            except StatusError as exc:
                errors.append(exc)
        if errors:
            raise errors[0]
        return claimed

    async def _claim_one(self, obj: Obj) -> bool:
        ref, owner_deleting = controller_ref(obj), bool(self.owner["metadata"].get("deletionTimestamp"))
        matches = not self.selector.empty and self.selector.matches(labels_of(obj))
        if ref is not None:
            if ref.get("uid") != self.uid:
                return False
            if matches:
                return True
            if not owner_deleting:
                await self._release(obj)
            return False
        if owner_deleting or not matches or obj["metadata"].get("deletionTimestamp"):
            return False
        if obj["metadata"].get("namespace") != self.owner["metadata"].get("namespace"):
            return False
        if not self._adopt_checked:
            await self.can_adopt()
            self._adopt_checked = True
        try:
            await self.patch(obj, {"metadata": {"ownerReferences": [new_controller_ref(self.owner)],
                                                "uid": obj["metadata"]["uid"]}})
        except NotFound:
            return False
        return True

    async def _release(self, obj: Obj) -> None:
        with contextlib.suppress(NotFound, Invalid):  # gone, or someone else released it already
            await self.patch(obj, {"metadata": {"ownerReferences": [{"$patch": "delete", "uid": self.uid}],
                                                "uid": obj["metadata"]["uid"]}})


def recheck_owner(get: Callable[[], Awaitable[Obj]], owner: Obj) -> Callable[[], Awaitable[None]]:
    """Upstream RecheckDeletionTimestamp: fail adoption if the owner is gone, replaced or deleting."""
    async def check() -> None:
        fresh = await get()
        meta = fresh["metadata"]
        if meta.get("uid") != owner["metadata"]["uid"]:
            raise NotFound(f"original {owner['kind']} {owner['metadata']['name']} is gone: got uid "
                           f"{meta.get('uid')}, wanted {owner['metadata']['uid']}")
        if meta.get("deletionTimestamp"):
            raise NotFound(f"{meta.get('namespace')}/{meta['name']} has just been deleted at "
                           f"{meta['deletionTimestamp']}")
    return check


# ----- the controller ----------------------------------------------------------------------------

class ReplicaSetController(Controller):
    name = "replicaset"
    workers = 5
    burst_replicas = BURST_REPLICAS

    def setup(self) -> None:
        self.expectations = Expectations()
        self.rs_informer = self.informers.informer(REPLICASETS)
        self.pod_informer = self.informers.informer(PODS)
        self.rs_informer.add_index(NAMESPACE_INDEX, by_namespace)
        self.rs_informer.add_index(CONTROLLER_UID_INDEX, by_controller_uid)
        self.pod_informer.add_index(NAMESPACE_INDEX, by_namespace)
        self.rs_informer.add_handlers(_handlers(on_add=self.enqueue, on_update=self._update_rs, on_delete=self._delete_rs))
        self.pod_informer.add_handlers(_handlers(on_add=self._add_pod, on_update=self._update_pod,
                                                 on_delete=self._delete_pod))

    # ----- event handlers: only keys and expectations ------------------------------------------

    def _update_rs(self, old: Obj, cur: Obj) -> None:
        if old["metadata"].get("uid") != cur["metadata"].get("uid"):
            self._delete_rs(old)
        self.enqueue(cur)

    def _delete_rs(self, rs: Obj) -> None:
        key = pod_key(rs)
        self.expectations.delete(key)
        self.queue.add(key)

    def _resolve(self, namespace: str, ref: Obj) -> Obj | None:
        if ref.get("kind") != "ReplicaSet":
            return None
        rs = self.rs_informer.get(f"{namespace}/{ref.get('name')}")
        return rs if rs is not None and rs["metadata"].get("uid") == ref.get("uid") else None

    def _matching_rss(self, pod: Obj) -> list[Obj]:
        if not labels_of(pod):
            return []
        found = []
        for rs in self.rs_informer.by_index(NAMESPACE_INDEX, str(pod["metadata"].get("namespace") or "")):
            selector = selector_or_none(rs)
            if selector is not None and not selector.empty and selector.matches(labels_of(pod)):
                found.append(rs)
        return found

    def _add_pod(self, pod: Obj) -> None:
        if pod["metadata"].get("deletionTimestamp"):
            self._delete_pod(pod)
            return
        ref = controller_ref(pod)
        if ref is not None:
            rs = self._resolve(pod["metadata"]["namespace"], ref)
            if rs is not None:
                self.expectations.creation_observed(pod_key(rs))
                self.enqueue(rs)
            return
        for rs in self._matching_rss(pod):
            self.enqueue(rs)

    def _update_pod(self, old: Obj, cur: Obj) -> None:
        labels_changed = labels_of(old) != labels_of(cur)
        if cur["metadata"].get("deletionTimestamp"):
            self._delete_pod(cur)
            if labels_changed:
                self._delete_pod(old)
            return
        cur_ref, old_ref = controller_ref(cur), controller_ref(old)
        if cur_ref != old_ref and old_ref is not None:
            old_rs = self._resolve(old["metadata"]["namespace"], old_ref)
            if old_rs is not None:
                self.enqueue(old_rs)
        if cur_ref is not None:
            rs = self._resolve(cur["metadata"]["namespace"], cur_ref)
            if rs is None:
                return
            self.enqueue(rs)
            min_ready = int((rs.get("spec") or {}).get("minReadySeconds") or 0)
            if min_ready and not is_pod_ready(old) and is_pod_ready(cur):
                self.queue.add_after(pod_key(rs), min_ready + 1)  # +1: avoid clock skew at the edge
            return
        if labels_changed or cur_ref != old_ref:
            for rs in self._matching_rss(cur):
                self.enqueue(rs)

    def _delete_pod(self, pod: Obj) -> None:
        ref = controller_ref(pod)
        rs = self._resolve(pod["metadata"]["namespace"], ref) if ref else None
        if rs is not None:
            self.expectations.deletion_observed(pod_key(rs), pod_key(pod))
            self.enqueue(rs)

    # ----- sync ---------------------------------------------------------------------------------

    async def sync(self, key: str) -> None:
        rs = self.rs_informer.get(key)
        if rs is None:
            self.expectations.delete(key)
            return
        needs_sync = self.expectations.satisfied(key)
        selector = selector_or_none(rs)
        if selector is None:
            self.log.warning("replicaset %s has an invalid selector", key)
            return
        namespace, _ = split_key(key)
        active = [p for p in self.pod_informer.by_index(NAMESPACE_INDEX, namespace or "") if is_pod_active(p)]
        pods = await self._claimer(rs, selector).claim(active)
        manage_error: Exception | None = None
        if needs_sync and not rs["metadata"].get("deletionTimestamp"):
            try:
                await self.manage_replicas(pods, rs)
            except Exception as exc:  # reported in status, then retried with backoff
                manage_error = exc
        updated = await self._write_status(rs, calculate_status(rs, pods, manage_error, now=time.time()))
        spec, status = updated.get("spec") or {}, updated.get("status") or {}
        if manage_error is None and int(spec.get("minReadySeconds") or 0) > 0 and \
                status.get("readyReplicas", 0) == spec.get("replicas") and \
                status.get("availableReplicas", 0) != spec.get("replicas"):
            self.queue.add_after(key, int(spec["minReadySeconds"]))
        if manage_error is not None:
            raise manage_error

    def _claimer(self, rs: Obj, selector: LabelSelector) -> Claimer:
        namespace, name = rs["metadata"].get("namespace"), rs["metadata"]["name"]

        async def patch(pod: Obj, body: Obj) -> Any:
            return await self.client.patch(PODS, pod["metadata"]["name"], body, namespace, patch_type="strategic")

        async def get() -> Obj:
            return await self.client.get(REPLICASETS, name, namespace)

        return Claimer(rs, selector, patch=patch, can_adopt=recheck_owner(get, rs))

    async def manage_replicas(self, pods: list[Obj], rs: Obj) -> None:
        key = pod_key(rs)
        diff = len(pods) - int((rs.get("spec") or {}).get("replicas") or 0)
        if diff < 0:
            count = min(-diff, self.burst_replicas)
            self.expectations.expect_creations(key, count)
            successes, error = await slow_start_batch(count, lambda: self._create_pod(rs))
            for _ in range(count - successes):  # never attempted or failed: the informer won't see them
                self.expectations.creation_observed(key)
            if error is not None:
                raise error
        elif diff > 0:
            count = min(diff, self.burst_replicas)
            victims = pods if count >= len(pods) else deletion_order(pods, self._related_pods(rs))[:count]
            self.expectations.expect_deletions(key, [pod_key(p) for p in victims])
            results = await asyncio.gather(*(self._delete_pod_of(rs, p) for p in victims), return_exceptions=True)
            errors = [r for r in results if isinstance(r, Exception)]
            if errors:
                raise errors[0]

    def _related_pods(self, rs: Obj) -> list[Obj]:
        """Pods of every ReplicaSet with the same controller as `rs` (its deployment's other RSs)."""
        ref = controller_ref(rs)
        if ref is None:
            return []
        seen: dict[str, Obj] = {}
        namespace = str(rs["metadata"].get("namespace") or "")
        pods = self.pod_informer.by_index(NAMESPACE_INDEX, namespace)
        for related in self.rs_informer.by_index(CONTROLLER_UID_INDEX, str(ref.get("uid"))):
            selector = selector_or_none(related)
            if selector is None or related["metadata"].get("namespace") != namespace:
                continue
            for pod in pods:
                if selector.matches(labels_of(pod)):
                    seen.setdefault(str(pod["metadata"].get("uid")), pod)
        return list(seen.values())

    async def _create_pod(self, rs: Obj) -> None:
        try:
            created = await self.client.create(PODS, pod_from_template(rs), rs["metadata"].get("namespace"))
        except StatusError as exc:
            if namespace_terminating(exc):
                return  # every create would fail; nothing to report
            self.events.record(rs, "Warning", "FailedCreate", f"Error creating: {exc.message}")
            raise
        self.events.record(rs, "Normal", "SuccessfulCreate", f"Created pod: {created['metadata']['name']}")

    async def _delete_pod_of(self, rs: Obj, pod: Obj) -> None:
        name = pod["metadata"]["name"]
        try:
            await self.client.delete(PODS, name, pod["metadata"].get("namespace"))
        except NotFound:
            self.expectations.deletion_observed(pod_key(rs), pod_key(pod))
            return
        except StatusError as exc:
            self.expectations.deletion_observed(pod_key(rs), pod_key(pod))
            self.events.record(rs, "Warning", "FailedDelete", f"Error deleting: {exc.message}")
            raise
        self.events.record(rs, "Normal", "SuccessfulDelete", f"Deleted pod: {name}")

    async def _write_status(self, rs: Obj, status: Obj) -> Obj:
        if status_unchanged(rs, status):
            return rs
        status = {**status, "observedGeneration": rs["metadata"].get("generation")}
        current = rs
        for attempt in range(STATUS_UPDATE_RETRIES + 1):
            try:
                return await self.client.update(REPLICASETS, {**current, "status": status}, subresource="status")
            except StatusError:
                if attempt >= STATUS_UPDATE_RETRIES:
                    raise
                current = await self.client.get(REPLICASETS, rs["metadata"]["name"], rs["metadata"].get("namespace"))
        return current


def _handlers(*, on_add: Callable[[Obj], None], on_update: Callable[[Obj, Obj], None],
              on_delete: Callable[[Obj], None]) -> Any:
    from kubelite.client import Handlers

    def update(old: Obj, cur: Obj) -> None:
        if (old.get("metadata") or {}).get("resourceVersion") != (cur.get("metadata") or {}).get("resourceVersion"):
            on_update(old, cur)

    return Handlers(on_add=on_add, on_update=update, on_delete=on_delete)
