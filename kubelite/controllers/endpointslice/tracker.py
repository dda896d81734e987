"""Remembering what the EndpointSlice controller itself last wrote, so that a sync never plans
from an informer cache that has not yet seen those writes (upstream's EndpointSliceTracker).

Per Service key: slice uid -> the resourceVersion our last create/update returned, or DELETED
after we deleted it. Upstream tracks metadata.generation; our API does not bump generation on
EndpointSlices, and resourceVersions here are store revisions (integers that only grow), so they
serve the same purpose. The cache is stale for a Service when a tracked slice is older in the cache
than what we wrote, when a slice we deleted is still cached, or when a slice we wrote is missing.
"""

from __future__ import annotations

from typing import Any

from kubelite.controllers.endpointslice.util import LABEL_SERVICE_NAME

Obj = dict[str, Any]

DELETED = -1


def _uid(slice_: Obj) -> str:
    return str((slice_.get("metadata") or {}).get("uid") or "")


def _version(slice_: Obj) -> int:
    try:
        return int((slice_.get("metadata") or {}).get("resourceVersion") or 0)
    except ValueError:
        return 0


def slice_service_key(slice_: Obj) -> str | None:
    meta = slice_.get("metadata") or {}
    service = (meta.get("labels") or {}).get(LABEL_SERVICE_NAME)
    return f"{meta.get('namespace')}/{service}" if service else None


class SliceTracker:
    def __init__(self) -> None:
        self._versions: dict[str, dict[str, int]] = {}
        self._service_uids: dict[str, str] = {}

    def _of(self, slice_: Obj) -> dict[str, int] | None:
        key = slice_service_key(slice_)
        return self._versions.get(key) if key else None

    def has(self, slice_: Obj) -> bool:
        versions = self._of(slice_)
        return versions is not None and _uid(slice_) in versions

    def should_sync(self, slice_: Obj) -> bool:
        """A slice event needs a sync unless it is our own write coming back."""
        versions = self._of(slice_)
        if versions is None or _uid(slice_) not in versions:
            return True
        return _version(slice_) > versions[_uid(slice_)]

    def stale(self, service: Obj, slices: list[Obj]) -> bool:
        meta = service.get("metadata") or {}
        key, uid = f"{meta.get('namespace')}/{meta.get('name')}", str(meta.get("uid") or "")
        if self._service_uids.get(key, uid) != uid:  # a new Service of the same name
            self._versions.pop(key, None)
        self._service_uids[key] = uid
        versions = self._versions.get(key)
        if not versions:
            return False
        cached = {_uid(s): _version(s) for s in slices}
        for slice_uid, seen in cached.items():
            wrote = versions.get(slice_uid)
            if wrote is not None and (wrote == DELETED or wrote > seen):
                return True
        return any(v != DELETED and slice_uid not in cached for slice_uid, v in versions.items())

    def update(self, slice_: Obj) -> None:
        key = slice_service_key(slice_)
        if key:
            self._versions.setdefault(key, {})[_uid(slice_)] = _version(slice_)

    def expect_deletion(self, slice_: Obj) -> None:
        key = slice_service_key(slice_)
        if key:
            self._versions.setdefault(key, {})[_uid(slice_)] = DELETED

    def handle_deletion(self, slice_: Obj) -> bool:
        """Forget a deleted slice; True when we were the ones who deleted it."""
        versions = self._of(slice_)
        if versions is None:
            return True
        wrote = versions.pop(_uid(slice_), None)
        return wrote is None or wrote == DELETED

    def delete_service(self, key: str) -> None:
        self._versions.pop(key, None)
        self._service_uids.pop(key, None)
