"""Per-kind behaviour plugged into the generic storage (upstream's RESTCreateStrategy & co).

The base `Strategy` is right for most kinds: defaults, validation, status kept apart from spec when
the kind has a status subresource, generation bumped on spec changes, finalizers honoured. Kinds
that differ subclass it with a few lines (see `kubelite.api.strategies`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from kubelite.api.objectmeta import Obj, deep_copy, meta, now_rfc3339, strip_spec_noise
from kubelite.objects.errors import BadRequest, invalid
from kubelite.objects.registry import ResourceType

if TYPE_CHECKING:
    from kubelite.api.storage import DeleteOptions, ResourceStorage

# metadata fields a client can never change through an update
IMMUTABLE_META = ("uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds")
ORPHAN, FOREGROUND = "orphan", "foregroundDeletion"


class Strategy:
    has_generation = False
    reset_status_on_create = True

    def __init__(self, rt: ResourceType) -> None:
        self.rt = rt
        self.has_status = rt.subresource("status") is not None

    # ----- create ----------------------------------------------------------------------------

    async def prepare_create(self, obj: Obj) -> None:
        if self.has_status and self.reset_status_on_create:
            obj.pop("status", None)
        if self.has_generation:
            meta(obj)["generation"] = 1
        self.default(obj)
        self.initial_status(obj)

    def initial_status(self, obj: Obj) -> None:
        """Status a new object starts with (pods: Pending); nothing by default."""

    async def admit_create(self, storage: ResourceStorage, obj: Obj) -> None:
        self.validate(obj, None)

    async def allocate(self, storage: ResourceStorage, obj: Obj, *, dry_run: bool,
                       held: frozenset[str] = frozenset()) -> list[str]:
        """Reserve what the object needs from shared pools beyond what it `held` already;
        returns the new reservation keys."""
        return []

    async def release(self, storage: ResourceStorage, reservations: list[str]) -> None:
        """Give back reservations (after a failed create or a delete)."""

    def reservations(self, obj: Obj) -> list[str]:
        return []

    # ----- update ----------------------------------------------------------------------------

    async def prepare_update(self, storage: ResourceStorage, obj: Obj, current: Obj, *,
                             subresource: str | None) -> Obj:
        if subresource == "status":
            obj = self._status_only(obj, current)
        elif subresource not in (None, "scale", "finalize", "binding"):
            raise BadRequest(f"subresource {subresource} cannot be updated")
        elif self.has_status and subresource != "binding":  # binding sets PodScheduled itself
            obj["status"] = deep_copy(current.get("status") or {})
            if not obj["status"]:
                obj.pop("status")
        self._keep_server_fields(obj, current)
        if subresource != "status":
            self.default(obj)
        if subresource != "binding":  # binding sets spec.nodeName, which pod updates may not
            self.validate(obj, current)
        self._bump_generation(obj, current)
        return obj

    def _status_only(self, obj: Obj, current: Obj) -> Obj:
        result = deep_copy(current)
        if "status" in obj:
            result["status"] = obj["status"]
        else:
            result.pop("status", None)
        return result

    def _keep_server_fields(self, obj: Obj, current: Obj) -> None:
        m, cm = meta(obj), meta(current)
        for key in IMMUTABLE_META:
            if key in cm:
                m[key] = cm[key]
            else:
                m.pop(key, None)
        if "generation" in cm:
            m["generation"] = cm["generation"]
        m["resourceVersion"] = cm["resourceVersion"]
        obj["apiVersion"], obj["kind"] = self.rt.api_version, self.rt.kind
        if cm.get("deletionTimestamp") and set(m.get("finalizers") or ()) - set(cm.get("finalizers") or ()):
            raise invalid(self.rt.kind, str(cm.get("name")), [_forbidden_finalizer()], group=self.rt.group)

    def _bump_generation(self, obj: Obj, current: Obj) -> None:
        if self.has_generation and strip_spec_noise(obj) != strip_spec_noise(current):
            meta(obj)["generation"] = int(meta(current).get("generation") or 0) + 1

    def delete_during_update(self, obj: Obj) -> bool:
        """An update that removes the last finalizer of an object being deleted deletes it."""
        m = meta(obj)
        return bool(m.get("deletionTimestamp")) and not m.get("finalizers") and \
            not m.get("deletionGracePeriodSeconds")

    # ----- delete ----------------------------------------------------------------------------

    def mark_for_deletion(self, obj: Obj, opts: DeleteOptions) -> Obj | None:
        """The object to store instead of deleting it now, or None to delete it now."""
        m = meta(obj)
        finalizers = list(m.get("finalizers") or [])
        policy = opts.propagation or self.default_propagation()
        wanted = {"Orphan": ORPHAN, "Foreground": FOREGROUND}.get(policy)
        if wanted and wanted not in finalizers and not m.get("deletionTimestamp"):
            finalizers.append(wanted)
        if not finalizers:
            return None
        m["finalizers"] = finalizers
        if not m.get("deletionTimestamp"):
            m["deletionTimestamp"] = now_rfc3339()
            m["deletionGracePeriodSeconds"] = 0
        return obj

    def default_propagation(self) -> str:
        return "Background"

    # ----- shared checks ---------------------------------------------------------------------

    def default(self, obj: Obj) -> None:
        from kubelite.objects.defaults import apply_defaults

        apply_defaults(self.rt, obj)

    def validate(self, obj: Obj, old: Obj | None) -> None:
        from kubelite.objects.validation import validate

        causes = validate(self.rt, obj, old=old)
        if causes:
            raise invalid(self.rt.kind, str(meta(obj).get("name") or ""), causes, group=self.rt.group)


def _forbidden_finalizer() -> Any:
    from kubelite.objects.errors import Cause

    return Cause("FieldValueForbidden", "Forbidden: no new finalizers can be added if the object is being "
                 "deleted", "metadata.finalizers")
