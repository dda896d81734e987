"""Pure Deployment bookkeeping (upstream pkg/controller/deployment/util): the pod-template hash,
maxSurge/maxUnavailable resolution, revision and replica annotations, and ReplicaSet set arithmetic.

Nothing here does I/O; every function takes plain API objects (dicts) and returns values or edits
the copy it was given, so the rollout code and unit tests share one implementation.
"""

from __future__ import annotations

import copy
import json
import math
import struct
from typing import Any

from kubelite.controllers.replicaset import parse_time

Obj = dict[str, Any]

HASH_LABEL = "pod-template-hash"
REVISION = "deployment.kubernetes.io/revision"
REVISION_HISTORY = "deployment.kubernetes.io/revision-history"
DESIRED_REPLICAS = "deployment.kubernetes.io/desired-replicas"
MAX_REPLICAS = "deployment.kubernetes.io/max-replicas"
ROLLBACK_TO = "deprecated.deployment.rollback.to"
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
SKIPPED_ANNOTATIONS = frozenset({LAST_APPLIED, REVISION, REVISION_HISTORY, DESIRED_REPLICAS, MAX_REPLICAS,
                                 ROLLBACK_TO})
MAX_REVISION_HISTORY_CHARS = 2000
NO_DEADLINE = 2**31 - 1
_ALPHANUMS = "bcdfghjklmnpqrstvwxz2456789"


# ----- hashing -----------------------------------------------------------------------------------

def fnv32a(data: bytes) -> int:
    h = 0x811C9DC5
    for byte in data:
        h = ((h ^ byte) * 0x01000193) & 0xFFFFFFFF
    return h


def safe_encode(text: str) -> str:
    """apimachinery rand.SafeEncodeString: map each character onto consonants and digits, so a
    hash never spells words and never looks like a number."""
    return "".join(_ALPHANUMS[ord(ch) % len(_ALPHANUMS)] for ch in text)


def semantic(value: Any) -> Any:
    """`value` without nulls, empty strings, maps and lists: what Go's semantic equality (nil ==
    empty) and JSON round trips through typed clients cannot tell apart."""
    if isinstance(value, dict):
        pruned = {k: semantic(v) for k, v in value.items()}
        return {k: v for k, v in pruned.items() if v not in (None, "", {}, [])}
    if isinstance(value, list):
        return [semantic(v) for v in value]
    return value


def compute_hash(template: Obj, collision_count: int | None = None) -> str:
    """FNV-32a of the template (canonical JSON of its semantic content), then the collision count
    as 8 little-endian bytes when set, rendered as SafeEncodeString of the decimal value."""
    canonical = json.dumps(semantic(template), sort_keys=True, separators=(",", ":")).encode()
    if collision_count is not None:
        canonical += struct.pack("<I", collision_count & 0xFFFFFFFF) + b"\0\0\0\0"
    return safe_encode(str(fnv32a(canonical)))


def without_hash(template: Obj) -> Obj:
    out = copy.deepcopy(template or {})
    labels = (out.get("metadata") or {}).get("labels")
    if isinstance(labels, dict):
        labels.pop(HASH_LABEL, None)
    return out


def equal_ignore_hash(t1: Obj, t2: Obj) -> bool:
    return bool(semantic(without_hash(t1)) == semantic(without_hash(t2)))


# ----- maxSurge / maxUnavailable -----------------------------------------------------------------

def scaled_value(value: Any, total: int, *, round_up: bool) -> int:
    """intstr.GetScaledValueFromIntOrPercent: an int as is, "N%" of total rounded up or down."""
    if isinstance(value, bool):
        raise ValueError(f"invalid value for IntOrString: {value!r}")
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.endswith("%"):
        try:
            percent = int(value[:-1])
        except ValueError:
            raise ValueError(f"invalid value for IntOrString: invalid value {value!r}") from None
        scaled = percent * total / 100
        return math.ceil(scaled) if round_up else math.floor(scaled)
    if value is None:
        return 0
    raise ValueError("invalid value for IntOrString: invalid type: string is not a percentage")


def resolve_fenceposts(max_surge: Any, max_unavailable: Any, desired: int) -> tuple[int, int]:
    """(surge, unavailable): surge rounds up, unavailable down; both 0 would deadlock, so
    unavailable becomes 1 (validation refuses both 0 as written, but percentages can round to it)."""
    surge = scaled_value(max_surge, desired, round_up=True)
    unavailable = scaled_value(max_unavailable, desired, round_up=False)
    if surge == 0 and unavailable == 0:
        unavailable = 1
    return surge, unavailable


def replicas(obj: Obj | None) -> int:
    return int(((obj or {}).get("spec") or {}).get("replicas") or 0)


def is_rolling(d: Obj) -> bool:
    return ((d.get("spec") or {}).get("strategy") or {}).get("type", "RollingUpdate") == "RollingUpdate"


def _rolling_params(d: Obj) -> tuple[int, int]:
    rolling = ((d.get("spec") or {}).get("strategy") or {}).get("rollingUpdate") or {}
    return resolve_fenceposts(rolling.get("maxSurge", "25%"), rolling.get("maxUnavailable", "25%"), replicas(d))


def max_surge(d: Obj) -> int:
    return _rolling_params(d)[0] if is_rolling(d) else 0


def max_unavailable(d: Obj) -> int:
    if not is_rolling(d) or replicas(d) == 0:
        return 0
    return min(_rolling_params(d)[1], replicas(d))


# ----- revisions and annotations -----------------------------------------------------------------

def annotations_of(obj: Obj) -> dict[str, str]:
    return (obj.get("metadata") or {}).get("annotations") or {}


def revision(obj: Obj | None) -> int:
    try:
        return int(annotations_of(obj or {}).get(REVISION, "0"))
    except ValueError:
        return 0


def max_revision(rss: list[Obj]) -> int:
    return max((revision(rs) for rs in rss), default=0)


def last_revision(rss: list[Obj]) -> int:
    """The second highest revision: what `rollout undo` without --to-revision goes back to."""
    top, second = 0, 0
    for rs in rss:
        rev = revision(rs)
        if rev >= top:
            top, second = rev, top
        elif rev > second:
            second = rev
    return second


def _set_annotation(obj: Obj, key: str, value: str) -> bool:
    ann = obj.setdefault("metadata", {}).setdefault("annotations", {})
    if ann.get(key) == value:
        return False
    ann[key] = value
    return True


def copy_deployment_annotations(d: Obj, rs: Obj) -> bool:
    """The deployment's annotations onto its new RS, except the controller's own bookkeeping."""
    changed = False
    for key, value in annotations_of(d).items():
        if key not in SKIPPED_ANNOTATIONS:
            changed = _set_annotation(rs, key, value) or changed
    return changed


def set_replicas_annotations(rs: Obj, desired: int, max_replicas: int) -> bool:
    changed = _set_annotation(rs, DESIRED_REPLICAS, str(desired))
    return _set_annotation(rs, MAX_REPLICAS, str(max_replicas)) or changed


def replicas_annotations_need_update(rs: Obj, desired: int, max_replicas: int) -> bool:
    ann = annotations_of(rs)
    return ann.get(DESIRED_REPLICAS) != str(desired) or ann.get(MAX_REPLICAS) != str(max_replicas)


def int_annotation(rs: Obj, key: str) -> int | None:
    try:
        return int(annotations_of(rs)[key])
    except (KeyError, ValueError):
        return None


def set_new_rs_annotations(d: Obj, rs: Obj, new_revision: int, *, exists: bool,
                           history_limit: int = MAX_REVISION_HISTORY_CHARS) -> bool:
    """Upstream SetNewReplicaSetAnnotations. A reused RS (rollback) moves its old revision into
    revision-history and takes `new_revision`; a revision only ever goes up."""
    changed = copy_deployment_annotations(d, rs)
    old = annotations_of(rs).get(REVISION)
    try:
        old_revision = int(old) if old else 0
    except ValueError:
        return False
    if old_revision < new_revision:
        changed = _set_annotation(rs, REVISION, str(new_revision)) or changed
        if old:
            _append_history(rs, old, history_limit)
    if not exists:
        changed = set_replicas_annotations(rs, replicas(d), replicas(d) + max_surge(d)) or changed
    return changed


def _append_history(rs: Obj, old: str, limit: int) -> None:
    history = annotations_of(rs).get(REVISION_HISTORY, "")
    if not history:
        _set_annotation(rs, REVISION_HISTORY, old)
        return
    entries = history.split(",")
    total, start = len(history) + len(old) + 1, 0
    while total > limit and start < len(entries):
        total -= len(entries[start]) + 1
        start += 1
    if total <= limit:
        _set_annotation(rs, REVISION_HISTORY, ",".join([*entries[start:], old]))


# ----- replica set arithmetic --------------------------------------------------------------------

def created_key(obj: Obj) -> tuple[float, str]:
    meta = obj.get("metadata") or {}
    return parse_time(meta.get("creationTimestamp")) or 0.0, str(meta.get("name") or "")


def by_creation(rss: list[Obj]) -> list[Obj]:
    return sorted(rss, key=created_key)


def find_new_rs(d: Obj, rss: list[Obj]) -> Obj | None:
    """The oldest RS whose template equals the deployment's (a rollback reuses an old one)."""
    template = (d.get("spec") or {}).get("template") or {}
    for rs in by_creation(rss):
        if equal_ignore_hash((rs.get("spec") or {}).get("template") or {}, template):
            return rs
    return None


def old_rss(rss: list[Obj], new_rs: Obj | None) -> list[Obj]:
    if new_rs is None:
        return list(rss)
    return [rs for rs in rss if rs["metadata"].get("uid") != new_rs["metadata"].get("uid")]


def active(rss: list[Obj | None]) -> list[Obj]:
    return [rs for rs in rss if rs is not None and replicas(rs) > 0]


def spec_total(rss: list[Obj | None]) -> int:
    return sum(replicas(rs) for rs in rss if rs is not None)


def status_total(rss: list[Obj | None], field: str = "replicas") -> int:
    return sum(int((rs.get("status") or {}).get(field) or 0) for rs in rss if rs is not None)


def is_saturated(d: Obj, rs: Obj | None) -> bool:
    if rs is None:
        return False
    return int_annotation(rs, DESIRED_REPLICAS) == replicas(d) and replicas(rs) == replicas(d) and \
        int((rs.get("status") or {}).get("availableReplicas") or 0) == replicas(d)


def new_rs_new_replicas(d: Obj, all_rss: list[Obj], new_rs: Obj) -> int:
    """The size the new RS may grow to now: Recreate jumps to the full count; RollingUpdate adds
    what maxSurge leaves room for, never past the deployment's replicas (upstream NewRSNewReplicas)."""
    if not is_rolling(d):
        return replicas(d)
    current, most = spec_total(list(all_rss)), replicas(d) + max_surge(d)
    if current >= most:
        return replicas(new_rs)
    return replicas(new_rs) + min(most - current, replicas(d) - replicas(new_rs))


def has_progress_deadline(d: Obj) -> bool:
    deadline = (d.get("spec") or {}).get("progressDeadlineSeconds")
    return deadline is not None and int(deadline) != NO_DEADLINE


def new_rs_template(d: Obj, pod_hash: str) -> Obj:
    template = copy.deepcopy((d.get("spec") or {}).get("template") or {})
    template.setdefault("metadata", {}).setdefault("labels", {})[HASH_LABEL] = pod_hash
    return template


def selector_with_hash(selector: Obj, pod_hash: str) -> Obj:
    out = copy.deepcopy(selector or {})
    out.setdefault("matchLabels", {})[HASH_LABEL] = pod_hash
    return out
