"""Strategies of the kinds whose REST behaviour differs from the generic one."""

from __future__ import annotations

from typing import TYPE_CHECKING

from kubelite.api.objectmeta import Obj, deep_copy, meta, now_rfc3339
from kubelite.api.strategy import Strategy
from kubelite.objects.errors import Forbidden
from kubelite.objects.registry import ResourceType

if TYPE_CHECKING:
    from kubelite.api.storage import DeleteOptions, ResourceStorage

DEFAULT_POD_GRACE = 30
UNDELETABLE_NAMESPACES = ("default", "kube-system", "kube-public")
TERMINAL_PHASES = ("Succeeded", "Failed")


class GenerationStrategy(Strategy):
    """Deployments and ReplicaSets: metadata.generation counts spec changes for controllers."""

    has_generation = True


class NodeStrategy(Strategy):
    """The kubelet registers a Node with its status already filled in."""

    reset_status_on_create = False


class PodStrategy(Strategy):
    has_generation = True

    def initial_status(self, obj: Obj) -> None:
        status = obj.setdefault("status", {})
        status.setdefault("phase", "Pending")

    def mark_for_deletion(self, obj: Obj, opts: DeleteOptions) -> Obj | None:
        """A pod bound to a node waits for its kubelet to stop it for the grace period; an unbound
        or finished pod, or a grace period of 0 (`--grace-period=0 --force`), goes at once."""
        grace = self._grace(obj, opts)
        m = meta(obj)
        if grace > 0 and (obj.get("spec") or {}).get("nodeName") and \
                (obj.get("status") or {}).get("phase") not in TERMINAL_PHASES:
            current = m.get("deletionGracePeriodSeconds")
            if not m.get("deletionTimestamp") or (current is not None and grace < current):
                m["deletionTimestamp"] = now_rfc3339(grace)
                m["deletionGracePeriodSeconds"] = grace
            return obj
        if m.get("deletionTimestamp"):
            m["deletionGracePeriodSeconds"] = 0
        return super().mark_for_deletion(obj, opts)

    def _grace(self, obj: Obj, opts: DeleteOptions) -> int:
        if opts.grace_period is not None:
            return max(0, opts.grace_period)
        spec_grace = (obj.get("spec") or {}).get("terminationGracePeriodSeconds")
        return int(spec_grace) if spec_grace is not None else DEFAULT_POD_GRACE


class NamespaceStrategy(Strategy):
    """Deleting a namespace makes it Terminating; the namespace controller empties it and clears
    spec.finalizers through the `finalize` subresource, which lets it go."""

    def initial_status(self, obj: Obj) -> None:
        obj["status"] = {"phase": "Active"}

    async def prepare_update(self, storage: ResourceStorage, obj: Obj, current: Obj, *,
                             subresource: str | None) -> Obj:
        if subresource == "finalize":
            finalizers = (obj.get("spec") or {}).get("finalizers") or []
            obj = deep_copy(current)
            obj.setdefault("spec", {})["finalizers"] = finalizers
        elif subresource is None:
            obj.setdefault("spec", {})["finalizers"] = (current.get("spec") or {}).get("finalizers", [])
        return await super().prepare_update(storage, obj, current, subresource=subresource)

    def mark_for_deletion(self, obj: Obj, opts: DeleteOptions) -> Obj | None:
        name = meta(obj).get("name")
        if name in UNDELETABLE_NAMESPACES:
            raise Forbidden(f'namespaces "{name}" is forbidden: this namespace may not be deleted',
                            details={"name": name, "kind": "namespaces"})
        if not (obj.get("spec") or {}).get("finalizers"):
            return super().mark_for_deletion(obj, opts)
        m = meta(obj)
        if not m.get("deletionTimestamp"):
            m["deletionTimestamp"] = now_rfc3339()
            m["deletionGracePeriodSeconds"] = 0
        obj.setdefault("status", {})["phase"] = "Terminating"
        return obj

    def delete_during_update(self, obj: Obj) -> bool:
        return super().delete_during_update(obj) and not (obj.get("spec") or {}).get("finalizers")


def strategy_for(rt: ResourceType, **services_config: object) -> Strategy:
    if rt.kind == "Service" and rt.group == "":
        from kubelite.api.services import ServiceStrategy

        return ServiceStrategy(rt, **services_config)  # type: ignore[arg-type]
    by_kind: dict[tuple[str, str], type[Strategy]] = {
        ("", "Pod"): PodStrategy,
        ("", "Namespace"): NamespaceStrategy,
        ("", "Node"): NodeStrategy,
        ("apps", "Deployment"): GenerationStrategy,
        ("apps", "ReplicaSet"): GenerationStrategy,
    }
    return by_kind.get((rt.group, rt.kind), Strategy)(rt)
