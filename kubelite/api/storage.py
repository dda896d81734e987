"""Generic storage: one code path that gives every kind its REST semantics over the store.

Per request it maps (resource, namespace, name) to a store key, runs the kind's strategy
(defaults, validation, what an update may change), writes with compare-and-swap on the
resourceVersion, and maps store errors onto metav1 Status errors. Upstream's generic registry
(`k8s.io/apiserver/pkg/registry/generic/registry/store.go`) plays this part there.

Object lifecycle rules implemented here, as upstream:
- uid, creationTimestamp and generation are the server's; resourceVersion is the store revision;
- an update with a stale resourceVersion is a 409 Conflict, without one it is unconditional;
- delete with finalizers (or a propagation policy that adds one, or a pod's grace period) only
  marks the object (deletionTimestamp); it goes when the last finalizer is removed.
"""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

from kubelite.api.objectmeta import Obj, deep_copy, generate_name, meta, new_uid, now_rfc3339
from kubelite.api.strategy import Strategy
from kubelite.objects import convert
from kubelite.objects.errors import (
    BadRequest,
    Conflict,
    Gone,
    InternalError,
    StatusError,
    Timeout,
    already_exists,
    conflict,
    not_found,
)
from kubelite.objects.registry import ResourceType
from kubelite.store.interface import (
    Compacted,
    Event,
    FutureRevision,
    KeyExists,
    KeyNotFound,
    RevisionMismatch,
    Store,
    StoreError,
)

TOO_LARGE_RV_WAIT = 3.0
STALE = "the object has been modified; please apply your changes to the latest version and try again"
MAX_CONFLICT_RETRIES = 8


@dataclass
class ListOptions:
    matches: Callable[[Obj], bool] = lambda obj: True
    limit: int = 0
    continue_token: str = ""
    resource_version: str = ""
    resource_version_match: str = ""
    only_name: str | None = None  # a `metadata.name=x` field selector narrows the scan to one key


@dataclass
class DeleteOptions:
    grace_period: int | None = None
    propagation: str | None = None  # Orphan | Background | Foreground
    uid: str | None = None
    resource_version: str | None = None
    dry_run: bool = False


@dataclass
class WatchEvent:
    type: str  # ADDED | MODIFIED | DELETED
    object: Obj
    revision: int = 0


@dataclass
class ListPage:
    items: list[Obj]
    resource_version: str
    continue_token: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


class ResourceStorage:
    def __init__(self, store: Store, rt: ResourceType, strategy: Strategy) -> None:
        self.store = store
        self.rt = rt
        self.strategy = strategy

    # ----- keys and encoding -----------------------------------------------------------------

    def key(self, namespace: str | None, name: str) -> str:
        if self.rt.namespaced:
            return f"/registry/{self.rt.storage_key}/{namespace}/{name}"
        return f"/registry/{self.rt.storage_key}/{name}"

    def prefix(self, namespace: str | None) -> str:
        if self.rt.namespaced and namespace:
            return f"/registry/{self.rt.storage_key}/{namespace}/"
        return f"/registry/{self.rt.storage_key}/"

    def decode(self, value: bytes, revision: int) -> Obj:
        obj: Obj = orjson.loads(value)
        obj = convert.from_storage(self.rt, obj)
        meta(obj)["resourceVersion"] = str(revision)
        return obj

    def encode(self, obj: Obj) -> bytes:
        stored = convert.to_storage(self.rt, deep_copy(obj))
        meta(stored).pop("resourceVersion", None)
        return orjson.dumps(stored)

    # ----- reads -----------------------------------------------------------------------------

    async def get(self, namespace: str | None, name: str) -> Obj:
        kv = await self._store_call(self.store.get(self.key(namespace, name)))
        if kv is None:
            raise not_found(self.rt.group_resource, name)
        return self.decode(kv.value, kv.mod_revision)

    async def list(self, namespace: str | None, opts: ListOptions) -> ListPage:
        rv = opts.resource_version
        if rv not in ("", "0") and opts.resource_version_match != "Exact" and not opts.continue_token:
            await self._wait_for_revision(_parse_rv(rv))
        start_after, revision = self._list_start(opts)
        prefix = self.prefix(namespace)
        if opts.only_name is not None and (namespace or not self.rt.namespaced) and not opts.continue_token:
            return await self._list_one(namespace, opts)
        items: list[Obj] = []
        while True:
            want = opts.limit - len(items) if opts.limit else 0
            page = await self._store_call(self.store.list(prefix, limit=want, start_after=start_after,
                                                           revision=revision))
            revision = page.revision
            for kv in page.items:
                obj = self.decode(kv.value, kv.mod_revision)
                if opts.matches(obj):
                    items.append(obj)
            if not page.more:
                return ListPage(items, str(revision))
            start_after = page.items[-1].key
            if len(items) >= opts.limit:
                return ListPage(items, str(revision), _continue_token(revision, start_after))

    async def _list_one(self, namespace: str | None, opts: ListOptions) -> ListPage:
        revision = await self.store.current_revision()
        assert opts.only_name is not None
        kv = await self._store_call(self.store.get(self.key(namespace, opts.only_name)))
        items = []
        if kv is not None:
            obj = self.decode(kv.value, kv.mod_revision)
            if opts.matches(obj):
                items.append(obj)
        return ListPage(items, str(revision))

    def _list_start(self, opts: ListOptions) -> tuple[str, int]:
        if opts.continue_token:
            return _parse_continue(opts.continue_token)
        rv = opts.resource_version
        if rv and rv != "0" and opts.resource_version_match == "Exact":
            return "", _parse_rv(rv)
        return "", 0

    async def current_revision(self) -> int:
        return await self.store.current_revision()

    async def _wait_for_revision(self, wanted: int) -> None:
        """NotOlderThan semantics: a list may not reflect a state older than `wanted`; wait a
        little for this server to catch up, as upstream does, then refuse."""
        deadline = time.monotonic() + TOO_LARGE_RV_WAIT
        while (current := await self.store.current_revision()) < wanted:
            if time.monotonic() > deadline:
                raise _too_large(f"{wanted}, current: {current}")
            await asyncio.sleep(0.05)

    # ----- watch -----------------------------------------------------------------------------

    async def watch(self, namespace: str | None, *, start_revision: int,
                    matches: Callable[[Obj], bool]) -> AsyncIterator[WatchEvent]:
        """Events after `start_revision`, with selector transitions as upstream: an object that
        stops matching is reported DELETED, one that starts matching is ADDED."""
        try:
            async for event in self.store.watch(self.prefix(namespace), start_revision=start_revision):
                converted = self._watch_event(event, matches)
                if converted is not None:
                    yield converted
        except Compacted as exc:
            raise _expired(exc.compact_revision) from None

    def _watch_event(self, event: Event, matches: Callable[[Obj], bool]) -> WatchEvent | None:
        rev = event.kv.mod_revision
        if event.type == "DELETE":
            obj = self.decode(event.kv.value, rev)
            return WatchEvent("DELETED", obj, rev) if matches(obj) else None
        obj = self.decode(event.kv.value, rev)
        now_matches = matches(obj)
        was = event.prev is not None and matches(self.decode(event.prev.value, event.prev.mod_revision))
        if now_matches:
            return WatchEvent("MODIFIED" if was else "ADDED", obj, rev)
        return WatchEvent("DELETED", obj, rev) if was else None

    # ----- writes ----------------------------------------------------------------------------

    async def create(self, namespace: str | None, obj: Obj, *, dry_run: bool = False) -> Obj:
        m = meta(obj)
        if not m.get("name") and m.get("generateName"):
            m["name"] = generate_name(str(m["generateName"]))
        self._set_identity(obj, namespace)
        await self.strategy.prepare_create(obj)
        await self.strategy.admit_create(self, obj)
        name = str(meta(obj)["name"])
        await self._check_absent(namespace, name)  # before reserving anything for it
        if dry_run:
            await self.strategy.allocate(self, obj, dry_run=True)
            return obj
        reserved = await self.strategy.allocate(self, obj, dry_run=False)
        try:
            kv = await self._store_call(self.store.create(self.key(namespace, name), self.encode(obj)))
        except BaseException:
            await self.strategy.release(self, reserved)
            raise
        return self.decode(kv.value, kv.mod_revision)

    def _set_identity(self, obj: Obj, namespace: str | None) -> None:
        m = meta(obj)
        for server_owned in ("uid", "resourceVersion", "deletionTimestamp", "deletionGracePeriodSeconds",
                             "selfLink"):
            m.pop(server_owned, None)
        m["uid"] = new_uid()
        m["creationTimestamp"] = now_rfc3339()
        if self.rt.namespaced:
            m["namespace"] = namespace
        else:
            m.pop("namespace", None)
        obj["apiVersion"], obj["kind"] = self.rt.api_version, self.rt.kind

    async def _check_absent(self, namespace: str | None, name: str) -> None:
        if await self.store.get(self.key(namespace, name)) is not None:
            raise already_exists(self.rt.group_resource, name)

    async def update(self, namespace: str | None, name: str, obj: Obj, *, subresource: str | None = None,
                     dry_run: bool = False) -> Obj:
        """A PUT: the client's full object, guarded by its resourceVersion when it sends one."""
        self._check_identity(obj, namespace, name)
        current = await self.get(namespace, name)
        expected = str(meta(obj).get("resourceVersion") or "")
        if expected and expected != meta(current)["resourceVersion"]:
            raise conflict(self.rt.group_resource, name, STALE)
        return await self._write_update(namespace, name, obj, current, subresource=subresource,
                                        dry_run=dry_run)

    async def guaranteed_update(self, namespace: str | None, name: str, mutate: Callable[[Obj], Obj], *,
                                subresource: str | None = None, dry_run: bool = False) -> Obj:
        """Read, mutate, write; on a lost race re-read and re-apply (patch, scale, finalize)."""
        for _ in range(MAX_CONFLICT_RETRIES):
            current = await self.get(namespace, name)
            desired = mutate(deep_copy(current))
            try:
                return await self._write_update(namespace, name, desired, current,
                                                subresource=subresource, dry_run=dry_run)
            except Conflict as exc:
                if "has been modified" not in exc.message:
                    raise
        raise conflict(self.rt.group_resource, name, STALE)

    async def _write_update(self, namespace: str | None, name: str, obj: Obj, current: Obj, *,
                            subresource: str | None, dry_run: bool) -> Obj:
        self._check_identity(obj, namespace, name)
        obj = await self.strategy.prepare_update(self, obj, current, subresource=subresource)
        held = frozenset(self.strategy.reservations(current))
        taken = await self.strategy.allocate(self, obj, dry_run=dry_run, held=held)
        if dry_run:
            return obj
        rev = int(meta(current)["resourceVersion"])
        key = self.key(namespace, name)
        try:
            if self.strategy.delete_during_update(obj):
                await self._store_call(self.store.delete(key, expected_revision=rev), name=name)
                await self.strategy.release(self, sorted(held | set(taken)))
                return obj
            kv = await self._store_call(self.store.update(key, self.encode(obj), expected_revision=rev),
                                        name=name)
        except BaseException:
            await self.strategy.release(self, taken)
            raise
        await self.strategy.release(self, sorted(held - set(self.strategy.reservations(obj))))
        return self.decode(kv.value, kv.mod_revision)

    def _check_identity(self, obj: Obj, namespace: str | None, name: str) -> None:
        m = meta(obj)
        if m.get("name") and m["name"] != name:
            raise BadRequest(f"the name of the object ({m['name']}) does not match the name on the URL ({name})")
        if self.rt.namespaced and m.get("namespace") and m["namespace"] != namespace:
            raise BadRequest("the namespace of the provided object does not match the namespace sent on "
                             "the request")
        m["name"] = name
        if self.rt.namespaced:
            m["namespace"] = namespace

    async def delete(self, namespace: str | None, name: str, opts: DeleteOptions) -> tuple[Obj, bool]:
        """Returns (object, gone): gone is False when the object only got a deletionTimestamp."""
        for _ in range(MAX_CONFLICT_RETRIES):
            current = await self.get(namespace, name)
            self._check_preconditions(current, opts)
            marked = self.strategy.mark_for_deletion(deep_copy(current), opts)
            if opts.dry_run or marked == current:  # dry run, or already marked: nothing to write
                return (marked or current), marked is None
            rev = int(meta(current)["resourceVersion"])
            key = self.key(namespace, name)
            try:
                if marked is not None:
                    kv = await self.store.update(key, self.encode(marked), expected_revision=rev)
                    return self.decode(kv.value, kv.mod_revision), False
                await self.store.delete(key, expected_revision=rev)
            except RevisionMismatch:
                continue
            except KeyNotFound:
                raise not_found(self.rt.group_resource, name) from None
            except StoreError as exc:
                raise InternalError(f"storage error: {exc}") from None
            await self.strategy.release(self, self.strategy.reservations(current))
            return current, True
        raise conflict(self.rt.group_resource, name, STALE)

    def _check_preconditions(self, current: Obj, opts: DeleteOptions) -> None:
        m = meta(current)
        if opts.uid and opts.uid != m.get("uid"):
            raise conflict(self.rt.group_resource, m["name"],
                           f"Precondition failed: UID in precondition: {opts.uid}, UID in object meta: "
                           f"{m.get('uid')}")
        if opts.resource_version and opts.resource_version != m.get("resourceVersion"):
            raise conflict(self.rt.group_resource, m["name"],
                           f"Precondition failed: ResourceVersion in precondition: {opts.resource_version}, "
                           f"ResourceVersion in object meta: {m.get('resourceVersion')}")

    async def _store_call(self, awaitable: Any, *, name: str = "") -> Any:
        """Await a store call, mapping store errors onto Status errors."""
        try:
            return await awaitable
        except KeyExists:
            raise already_exists(self.rt.group_resource, name) from None
        except KeyNotFound:
            raise not_found(self.rt.group_resource, name) from None
        except RevisionMismatch:
            raise conflict(self.rt.group_resource, name, STALE) from None
        except Compacted as exc:
            raise _expired(exc.compact_revision) from None
        except FutureRevision as exc:
            raise _too_large(str(exc)) from None
        except StoreError as exc:
            raise InternalError(f"storage error: {exc}") from None


def _continue_token(revision: int, start_after: str) -> str:
    raw = orjson.dumps({"v": "meta.k8s.io/v1", "rv": revision, "start": start_after})
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _parse_continue(token: str) -> tuple[str, int]:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        data = orjson.loads(raw)
        return str(data["start"]), int(data["rv"])
    except (ValueError, KeyError, TypeError, orjson.JSONDecodeError):
        raise BadRequest("invalid continue token: it must be the metadata.continue of a previous list "
                         "response") from None


def _parse_rv(rv: str) -> int:
    if not rv.isdigit():
        raise BadRequest(f'invalid resource version "{rv}": it must be a decimal number')
    return int(rv)


def _expired(compact_revision: int) -> StatusError:
    return Gone(f"The resourceVersion for the provided list is too old (the oldest kept is "
                f"{compact_revision}); re-list without resourceVersion or continue to get a fresh one")


def _too_large(message: str) -> StatusError:
    return Timeout(f"Too large resource version: {message}",
                   details={"causes": [{"reason": "ResourceVersionTooLarge", "message": "Too large resource version"}],
                            "retryAfterSeconds": 1})
