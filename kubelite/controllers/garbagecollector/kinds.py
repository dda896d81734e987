"""Which kinds the garbage collector tracks, and how an ownerReference names one of them.

Upstream's collector watches every resource that supports delete, list and watch, except events
(its default ignored resources); we read the same facts from the registry instead of discovery.
An ownerReference is resolved by API group and kind: the version in its apiVersion does not matter
for finding the object (we serve one version of each kind), only for what the reference says.
"""

from __future__ import annotations

from functools import cache

from kubelite.objects.registry import REGISTRY, ResourceType

# Events are never owners and are numerous; upstream's collector ignores them too.
IGNORED: frozenset[tuple[str, str]] = frozenset({("", "events"), ("events.k8s.io", "events")})
REQUIRED_VERBS = ("delete", "list", "watch")


@cache
def gc_resources() -> tuple[ResourceType, ...]:
    """Every kind whose objects may own or be owned, one entry per kind."""
    return tuple(rt for rt in REGISTRY.resources
                 if all(verb in rt.verbs for verb in REQUIRED_VERBS)
                 and (rt.group, rt.plural) not in IGNORED)


@cache
def _by_group_kind() -> dict[tuple[str, str], ResourceType]:
    return {(rt.group, rt.kind): rt for rt in gc_resources()}


def group_of(api_version: str) -> str:
    return api_version.rpartition("/")[0]


def resolve(api_version: str, kind: str) -> ResourceType | None:
    """The tracked kind an (apiVersion, kind) pair names, or None if we cannot look it up."""
    return _by_group_kind().get((group_of(api_version or ""), kind or ""))
