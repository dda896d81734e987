"""coordination.k8s.io/v1 Lease validation."""

from __future__ import annotations

from kubelite.objects.errors import Cause
from kubelite.objects.validation.access import Obj, as_int, as_str, m
from kubelite.objects.validation.fielderr import forbidden, invalid, invalid_each, not_supported
from kubelite.objects.validation.formats import is_qualified_name
from kubelite.objects.validation.meta import (
    name_is_dns_subdomain,
    validate_object_meta,
    validate_object_meta_update,
)

LEASE_STRATEGIES = ("OldestEmulationVersion",)


def validate_lease(obj: Obj, old: Obj | None) -> list[Cause]:
    if old is None:
        errs = validate_object_meta(m(obj, "metadata"), True, name_is_dns_subdomain, kube_finalizers=False)
    else:
        errs = validate_object_meta_update(m(obj, "metadata"), m(old, "metadata"), kube_finalizers=False)
    spec = m(obj, "spec")
    duration = as_int(spec.get("leaseDurationSeconds"))
    if duration is not None and duration <= 0:
        errs.append(invalid("spec.leaseDurationSeconds", duration, "must be greater than 0"))
    transitions = as_int(spec.get("leaseTransitions"))
    if transitions is not None and transitions < 0:
        errs.append(invalid("spec.leaseTransitions", transitions, "must be greater than or equal to 0"))
    strategy = as_str(spec.get("strategy"))
    if spec.get("strategy") is not None:
        errs += _strategy(strategy)
    if as_str(spec.get("preferredHolder")) and not strategy:
        errs.append(forbidden("spec.preferredHolder", "may only be specified if `strategy` is defined"))
    return errs


def _strategy(strategy: str) -> list[Cause]:
    # upstream appends "strategy" to a path that already ends in it
    path = "spec.strategy.strategy"
    if "/" not in strategy:
        return [] if strategy in LEASE_STRATEGIES else [not_supported(path, strategy, LEASE_STRATEGIES)]
    return invalid_each(path, strategy, is_qualified_name(strategy))
