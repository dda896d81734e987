"""An in-memory stand-in for `kubelite.client.Client` for node agent unit tests: objects with
uids and resourceVersions, optimistic concurrency on update, merge and strategic patches, delete
preconditions, and a record of every call."""

from __future__ import annotations

import copy
import itertools
import uuid
from typing import Any

from kubelite.objects import errors
from kubelite.objects.patch import merge_patch
from kubelite.objects.registry import ResourceType
from kubelite.objects.strategic import strategic_merge_patch

Obj = dict[str, Any]


class FakeAPI:
    def __init__(self) -> None:
        self.objects: dict[tuple[str, str, str], Obj] = {}
        self.calls: list[tuple[str, str, str]] = []  # (verb, plural, name[/subresource])
        self._rv = itertools.count(1)
        self.connection = None
        self.user_agent = "fake"

    def _key(self, rt: ResourceType, name: str, namespace: str | None) -> tuple[str, str, str]:
        return rt.plural, (namespace or "") if rt.namespaced else "", name

    def _stored(self, rt: ResourceType, name: str, namespace: str | None) -> Obj:
        obj = self.objects.get(self._key(rt, name, namespace))
        if obj is None:
            raise errors.NotFound(f'{rt.plural} "{name}" not found')
        return obj

    def _save(self, rt: ResourceType, obj: Obj) -> Obj:
        obj["metadata"]["resourceVersion"] = str(next(self._rv))
        obj.setdefault("apiVersion", rt.api_version)
        obj.setdefault("kind", rt.kind)
        self.objects[self._key(rt, obj["metadata"]["name"], obj["metadata"].get("namespace"))] = obj
        return copy.deepcopy(obj)

    def calls_of(self, verb: str, plural: str | None = None) -> list[tuple[str, str, str]]:
        return [c for c in self.calls if c[0] == verb and (plural is None or c[1] == plural)]

    async def create(self, rt: ResourceType, obj: Obj, namespace: str | None = None, **_: Any) -> Obj:
        obj = copy.deepcopy(obj)
        meta = obj.setdefault("metadata", {})
        if rt.namespaced:
            meta["namespace"] = namespace or meta.get("namespace") or "default"
        self.calls.append(("create", rt.plural, meta["name"]))
        if self._key(rt, meta["name"], meta.get("namespace")) in self.objects:
            raise errors.AlreadyExists(f'{rt.plural} "{meta["name"]}" already exists')
        meta.update(uid=str(uuid.uuid4()), creationTimestamp="2025-01-01T00:00:00Z")
        return self._save(rt, obj)

    async def get(self, rt: ResourceType, name: str, namespace: str | None = None, **_: Any) -> Obj:
        self.calls.append(("get", rt.plural, name))
        return copy.deepcopy(self._stored(rt, name, namespace))

    async def list(self, rt: ResourceType, namespace: str | None = None, **_: Any) -> Obj:
        self.calls.append(("list", rt.plural, ""))
        items = [copy.deepcopy(o) for k, o in self.objects.items() if k[0] == rt.plural]
        return {"items": items, "metadata": {"resourceVersion": str(next(self._rv))}}

    async def update(self, rt: ResourceType, obj: Obj, *, subresource: str | None = None) -> Obj:
        meta = obj["metadata"]
        self.calls.append(("update", rt.plural, meta["name"] + (f"/{subresource}" if subresource else "")))
        current = self._stored(rt, meta["name"], meta.get("namespace"))
        if meta.get("resourceVersion") and meta["resourceVersion"] != current["metadata"]["resourceVersion"]:
            raise errors.Conflict(f'Operation cannot be fulfilled on {rt.plural} "{meta["name"]}"')
        updated = copy.deepcopy(current)
        if subresource == "status":
            updated["status"] = copy.deepcopy(obj.get("status"))
        else:
            updated.update({k: copy.deepcopy(v) for k, v in obj.items() if k not in ("metadata", "status")})
            updated["metadata"].update({k: v for k, v in meta.items() if k not in ("uid", "resourceVersion")})
        return self._save(rt, updated)

    async def patch(self, rt: ResourceType, name: str, patch: Any, namespace: str | None = None, *,
                    patch_type: str = "merge", subresource: str | None = None, **_: Any) -> Obj:
        self.calls.append(("patch", rt.plural, name + (f"/{subresource}" if subresource else "")))
        current = self._stored(rt, name, namespace)
        if patch_type == "strategic":
            patched = strategic_merge_patch(current, patch, rt.definition)
        else:
            patched = merge_patch(current, patch)
        patched["metadata"] = current["metadata"]
        return self._save(rt, copy.deepcopy(patched))

    async def delete(self, rt: ResourceType, name: str, namespace: str | None = None, *,
                     grace_period: int | None = None, preconditions: Obj | None = None, **_: Any) -> Obj:
        self.calls.append(("delete", rt.plural, name))
        current = self._stored(rt, name, namespace)
        if preconditions and preconditions.get("uid") not in (None, current["metadata"]["uid"]):
            raise errors.Conflict("Precondition failed: UID in precondition")
        del self.objects[self._key(rt, name, namespace)]
        return current

    async def close(self) -> None:
        pass
