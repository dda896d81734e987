"""The garbage collector's picture of ownership: a uid -> node graph built from informer events.

Data flow: informer handlers call `Graph.observe(obj)` (add/update) and `Graph.forget(obj)`
(delete); both update the graph at once, without I/O, and return `Changes`: the uids the workers
must look at (attempt-to-delete), owners whose dependents must be orphaned, and invalid references
to report. Workers read nodes back (`nodes`, `blocking_dependents`) and report owners they found
absent in the API (`confirm_absent`).

Invariants:
- `node.dependents` holds the uids of nodes that list the node in their ownerReferences (edges are
  keyed by uid; an owner we never observed is a *virtual* node, named by the first reference to
  it, and is removed once it has no dependents or the API confirms it is absent);
- a node leaving the graph with dependents is recorded in `absent` (namespace, uid): uids are never
  reused, so "absent" stays true and dependents need not ask the API again;
- a node is `deleting_dependents` while it has a deletionTimestamp and the foregroundDeletion
  finalizer (and no pending orphan finalizer, which is handled first), `orphaning` while it has a
  deletionTimestamp and the orphan finalizer; work is scheduled on the transitions into these states.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from kubelite.controllers.garbagecollector.kinds import group_of, resolve

Obj = dict[str, Any]
ORPHAN, FOREGROUND = "orphan", "foregroundDeletion"
ABSENT_CACHE_SIZE = 10_000


@dataclass(frozen=True)
class Identity:
    api_version: str
    kind: str
    name: str
    uid: str
    namespace: str = ""  # "" for cluster-scoped objects

    @classmethod
    def of(cls, obj: Obj) -> Identity:
        meta = obj.get("metadata") or {}
        return cls(str(obj.get("apiVersion") or ""), str(obj.get("kind") or ""), str(meta.get("name") or ""),
                   str(meta.get("uid") or ""), str(meta.get("namespace") or ""))

    def matches(self, ref: Obj) -> bool:
        """Does an ownerReference name this object (group, kind and name; the uid is the edge)?"""
        return (group_of(str(ref.get("apiVersion") or "")) == group_of(self.api_version)
                and ref.get("kind") == self.kind and ref.get("name") == self.name)


@dataclass
class Node:
    identity: Identity
    owners: list[Obj] = field(default_factory=list)
    dependents: set[str] = field(default_factory=set)
    observed: bool = True
    being_deleted: bool = False
    deleting_dependents: bool = False
    orphaning: bool = False

    @property
    def uid(self) -> str:
        return self.identity.uid

    def blocks(self, owner_uid: str) -> bool:
        return any(ref.get("uid") == owner_uid and ref.get("blockOwnerDeletion") for ref in self.owners)


@dataclass
class Changes:
    attempt_delete: list[str] = field(default_factory=list)
    attempt_orphan: list[str] = field(default_factory=list)
    invalid_namespace: list[tuple[Identity, Obj]] = field(default_factory=list)  # (dependent, its ref)


class AbsentOwners:
    """(namespace, uid) pairs the API confirmed absent, least recently used dropped first."""

    def __init__(self, size: int = ABSENT_CACHE_SIZE) -> None:
        self.size = size
        self._seen: OrderedDict[tuple[str, str], None] = OrderedDict()

    def add(self, namespace: str, uid: str) -> None:
        self._seen[(namespace, uid)] = None
        self._seen.move_to_end((namespace, uid))
        while len(self._seen) > self.size:
            self._seen.popitem(last=False)

    def __contains__(self, key: tuple[str, str]) -> bool:
        if key in self._seen:
            self._seen.move_to_end(key)
            return True
        return False


def diff_references(old: list[Obj], new: list[Obj]) -> tuple[list[Obj], list[Obj], list[tuple[Obj, Obj]]]:
    """(added, removed, changed as (old, new)) ownerReferences, matched by uid."""
    old_by_uid = {ref.get("uid"): ref for ref in old}
    new_by_uid = {ref.get("uid"): ref for ref in new}
    added = [ref for uid, ref in new_by_uid.items() if uid not in old_by_uid]
    removed = [ref for uid, ref in old_by_uid.items() if uid not in new_by_uid]
    changed = [(old_by_uid[uid], ref) for uid, ref in new_by_uid.items()
               if uid in old_by_uid and old_by_uid[uid] != ref]
    return added, removed, changed


class Graph:
    def __init__(self) -> None:
        self.nodes: dict[str, Node] = {}
        self.absent = AbsentOwners()

    # ----- informer events -----------------------------------------------------------------------

    def observe(self, obj: Obj) -> Changes:
        """An object was added or updated."""
        identity = Identity.of(obj)
        meta = obj.get("metadata") or {}
        owners = [ref for ref in meta.get("ownerReferences") or [] if ref.get("uid")]
        changes = Changes()
        removed: list[Obj] = []
        changed: list[tuple[Obj, Obj]] = []
        node = self.nodes.get(identity.uid)
        if node is None:
            node = self.nodes[identity.uid] = Node(identity)
            added = owners
        elif not node.observed:
            self._materialize(node, identity, changes)
            added = owners
        else:
            added, removed, changed = diff_references(node.owners, owners)
        node.owners = owners
        self._enqueue_unblocked_owners(removed, changed, changes)
        self._unlink(node, removed)
        self._link(node, added, changes)
        self._transition(node, meta, changes)
        return changes

    def forget(self, obj: Obj) -> Changes:
        """An object was deleted: its dependents lost an owner, its owners may be unblocked."""
        changes = Changes()
        node = self.nodes.get(str((obj.get("metadata") or {}).get("uid") or ""))
        if node is None or not node.observed:
            return changes
        del self.nodes[node.uid]
        self._unlink(node, node.owners)
        if node.dependents:
            self.absent.add(node.identity.namespace, node.uid)
            changes.attempt_delete.extend(sorted(node.dependents))
        for ref in node.owners:
            owner = self.nodes.get(str(ref.get("uid")))
            if owner is not None and owner.deleting_dependents:
                changes.attempt_delete.append(owner.uid)
        return changes

    def confirm_absent(self, uid: str) -> Changes:
        """The API says a virtual node does not exist (the reference's coordinates name nothing, or
        something with another uid): drop it and let its dependents be reconsidered."""
        node = self.nodes.get(uid)
        if node is None or node.observed:
            return Changes()
        del self.nodes[uid]
        self.absent.add(node.identity.namespace, uid)
        return Changes(attempt_delete=sorted(node.dependents))

    # ----- reads for workers ---------------------------------------------------------------------

    def blocking_dependents(self, uid: str) -> list[Node]:
        node = self.nodes.get(uid)
        if node is None:
            return []
        return [dep for dep_uid in sorted(node.dependents)
                if (dep := self.nodes.get(dep_uid)) is not None and dep.blocks(uid)]

    def dependents_of(self, uid: str) -> list[Node]:
        node = self.nodes.get(uid)
        if node is None:
            return []
        return [dep for dep_uid in sorted(node.dependents) if (dep := self.nodes.get(dep_uid)) is not None]

    # ----- edges ---------------------------------------------------------------------------------

    def _link(self, node: Node, refs: list[Obj], changes: Changes) -> None:
        recheck = False
        for ref in refs:
            owner_identity = owner_identity_of(node.identity, ref)
            if owner_identity is None:
                if is_cluster_to_namespaced(node.identity, ref):
                    changes.invalid_namespace.append((node.identity, ref))
                continue  # a kind we cannot look up: never collected on its account, as upstream
            owner = self.nodes.get(owner_identity.uid)
            if owner is None:
                if (owner_identity.namespace, owner_identity.uid) in self.absent:
                    recheck = True
                    continue
                owner = self.nodes[owner_identity.uid] = Node(owner_identity, observed=False)
                changes.attempt_delete.append(owner.uid)  # the worker asks the API whether it exists
            owner.dependents.add(node.uid)
            if owner.observed and not self._coordinates_agree(owner.identity, node.identity, ref, changes):
                recheck = True
            if owner.deleting_dependents:
                recheck = True
        if recheck:
            changes.attempt_delete.append(node.uid)

    def _unlink(self, node: Node, refs: list[Obj]) -> None:
        for ref in refs:
            owner = self.nodes.get(str(ref.get("uid")))
            if owner is None:
                continue
            owner.dependents.discard(node.uid)
            if not owner.observed and not owner.dependents:
                del self.nodes[owner.uid]

    def _coordinates_agree(self, owner: Identity, dependent: Identity, ref: Obj, changes: Changes) -> bool:
        if owner.namespace and owner.namespace != dependent.namespace:
            changes.invalid_namespace.append((dependent, ref))
            return False
        return owner.matches(ref)

    def _materialize(self, node: Node, identity: Identity, changes: Changes) -> None:
        """A virtual node was observed: dependents that named it differently must be rechecked."""
        node.observed = True
        node.identity = identity
        for dep in self.dependents_of(node.uid):
            ref = next((r for r in dep.owners if r.get("uid") == node.uid), {})
            if not self._coordinates_agree(identity, dep.identity, ref, changes):
                changes.attempt_delete.append(dep.uid)

    def _enqueue_unblocked_owners(self, removed: list[Obj], changed: list[tuple[Obj, Obj]],
                                  changes: Changes) -> None:
        unblocked = [ref for ref in removed if ref.get("blockOwnerDeletion")]
        unblocked += [old for old, new in changed if old.get("blockOwnerDeletion") and not new.get("blockOwnerDeletion")]
        for ref in unblocked:
            owner = self.nodes.get(str(ref.get("uid")))
            if owner is not None and owner.deleting_dependents:
                changes.attempt_delete.append(owner.uid)

    def _transition(self, node: Node, meta: Obj, changes: Changes) -> None:
        finalizers = meta.get("finalizers") or []
        deleting = bool(meta.get("deletionTimestamp"))
        orphaning = deleting and ORPHAN in finalizers
        foreground = deleting and FOREGROUND in finalizers and not orphaning
        was_orphaning, was_foreground = node.orphaning, node.deleting_dependents
        node.being_deleted, node.orphaning, node.deleting_dependents = deleting, orphaning, foreground
        if orphaning and not was_orphaning:
            changes.attempt_orphan.append(node.uid)
        if foreground and not was_foreground:
            changes.attempt_delete.extend(sorted(node.dependents))
            changes.attempt_delete.append(node.uid)


def owner_identity_of(dependent: Identity, ref: Obj) -> Identity | None:
    """Where a reference's owner lives: in the dependent's namespace for namespaced kinds."""
    rt = resolve(str(ref.get("apiVersion") or ""), str(ref.get("kind") or ""))
    if rt is None or (rt.namespaced and not dependent.namespace):
        return None
    return Identity(str(ref.get("apiVersion")), str(ref.get("kind")), str(ref.get("name") or ""),
                    str(ref.get("uid")), dependent.namespace if rt.namespaced else "")


def is_cluster_to_namespaced(dependent: Identity, ref: Obj) -> bool:
    rt = resolve(str(ref.get("apiVersion") or ""), str(ref.get("kind") or ""))
    return rt is not None and rt.namespaced and not dependent.namespace
