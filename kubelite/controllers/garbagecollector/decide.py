"""What to do with one object whose owners may be gone: pure decisions, no I/O.

The worker looks up each owner live (or finds it in the absent cache) and sorts the references,
as upstream's classifyReferences does:
- solid: the owner exists with the referenced uid and is not waiting for its dependents;
- dangling: no object at the reference's coordinates, or one with another uid;
- waiting: the owner exists but is being deleted in the foreground (deletionTimestamp and the
  foregroundDeletion finalizer), so it waits for this dependent to go;
- unresolvable: a kind we cannot look up, or a namespaced owner of a cluster-scoped object.

`verdict` then picks the action: nothing; drop the dangling and waiting references of an object that
still has a solid owner; or delete the object (Foreground when a waiting owner needs it gone and it
has dependents of its own, else honouring the object's own orphan/foreground finalizer, else
Background). An unresolvable reference freezes the object, as upstream never collects it either.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from kubelite.controllers.garbagecollector.graph import FOREGROUND, ORPHAN

Obj = dict[str, Any]


@dataclass
class Classified:
    solid: list[Obj] = field(default_factory=list)
    dangling: list[Obj] = field(default_factory=list)
    waiting: list[Obj] = field(default_factory=list)
    unresolvable: list[Obj] = field(default_factory=list)

    def add(self, category: str, ref: Obj) -> None:
        getattr(self, category).append(ref)


@dataclass(frozen=True)
class Verdict:
    action: str  # "none" | "remove_refs" | "delete"
    propagation: str = ""
    remove_uids: frozenset[str] = frozenset()
    unblock_first: bool = False  # set blockOwnerDeletion=false before a foreground delete (cycles)

    @property
    def reason(self) -> str:
        if self.action == "remove_refs":
            return f"drop references to absent or terminating owners {sorted(self.remove_uids)}"
        if self.action == "delete":
            return f"no owner left; delete with propagationPolicy {self.propagation}"
        return "nothing to do"


NOTHING = Verdict("none")


def classify_owner(ref: Obj, owner: Obj | None) -> str:
    """solid, dangling or waiting, from the live owner (None when the API had nothing there)."""
    meta = (owner or {}).get("metadata") or {}
    if owner is None or meta.get("uid") != ref.get("uid"):
        return "dangling"
    if meta.get("deletionTimestamp") and FOREGROUND in (meta.get("finalizers") or []):
        return "waiting"
    return "solid"


def verdict(latest: Obj, classified: Classified, *, has_dependents: bool,
            dependent_deleting_dependents: bool = False) -> Verdict:
    if classified.unresolvable:
        return NOTHING
    if classified.solid:
        gone = classified.dangling + classified.waiting
        if not gone:
            return NOTHING
        return Verdict("remove_refs", remove_uids=frozenset(str(ref.get("uid")) for ref in gone))
    if classified.waiting and has_dependents:
        return Verdict("delete", "Foreground", unblock_first=dependent_deleting_dependents)
    finalizers = (latest.get("metadata") or {}).get("finalizers") or []
    if ORPHAN in finalizers:
        return Verdict("delete", "Orphan")
    if FOREGROUND in finalizers:
        return Verdict("delete", "Foreground")
    return Verdict("delete", "Background")


# ----- metadata patches (JSON merge patch bodies, guarded by resourceVersion) -------------------

def owner_refs(obj: Obj) -> list[Obj]:
    return list((obj.get("metadata") or {}).get("ownerReferences") or [])


def without_owners_patch(obj: Obj, uids: frozenset[str] | set[str]) -> Obj | None:
    """The patch dropping references to `uids`, or None if the object has none of them."""
    refs = owner_refs(obj)
    kept = [ref for ref in refs if ref.get("uid") not in uids]
    if len(kept) == len(refs):
        return None
    return _meta_patch(obj, ownerReferences=kept or None)


def unblocked_patch(obj: Obj) -> Obj | None:
    refs = owner_refs(obj)
    if not any(ref.get("blockOwnerDeletion") for ref in refs):
        return None
    return _meta_patch(obj, ownerReferences=[{**ref, "blockOwnerDeletion": False} if ref.get("blockOwnerDeletion")
                                             else ref for ref in refs])


def without_finalizer_patch(obj: Obj, finalizer: str) -> Obj | None:
    finalizers = list((obj.get("metadata") or {}).get("finalizers") or [])
    if finalizer not in finalizers:
        return None
    return _meta_patch(obj, finalizers=[f for f in finalizers if f != finalizer] or None)


def _meta_patch(obj: Obj, **fields: Any) -> Obj:
    # resourceVersion in a merge patch makes the API refuse it (409) if the object changed since
    return {"metadata": {"resourceVersion": obj["metadata"]["resourceVersion"], **fields}}
