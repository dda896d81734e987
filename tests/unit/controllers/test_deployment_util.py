"""Deployment bookkeeping: pod-template hash, maxSurge/maxUnavailable resolution, revisions and
replica annotations, template equality."""

from __future__ import annotations

import re
from typing import Any

import pytest

from kubelite.controllers.deployment.util import (
    DESIRED_REPLICAS,
    MAX_REPLICAS,
    REVISION,
    REVISION_HISTORY,
    compute_hash,
    equal_ignore_hash,
    fnv32a,
    last_revision,
    max_revision,
    max_surge,
    max_unavailable,
    new_rs_new_replicas,
    resolve_fenceposts,
    safe_encode,
    set_new_rs_annotations,
)

Obj = dict[str, Any]
TEMPLATE = {"metadata": {"labels": {"app": "hello"}},
            "spec": {"containers": [{"name": "x", "image": "x", "resources": {}}]}}


def deployment(replicas: int = 3, surge: Any = "25%", unavailable: Any = "25%", *, kind: str = "RollingUpdate",
               annotations: Obj | None = None) -> Obj:
    strategy: Obj = {"type": kind}
    if kind == "RollingUpdate":
        strategy["rollingUpdate"] = {"maxSurge": surge, "maxUnavailable": unavailable}
    return {"metadata": {"name": "hello", "annotations": annotations or {}},
            "spec": {"replicas": replicas, "strategy": strategy, "template": TEMPLATE}}


def rs(name: str, replicas: int = 0, *, revision: str | None = None, annotations: Obj | None = None) -> Obj:
    ann = dict(annotations or {})
    if revision is not None:
        ann[REVISION] = revision
    return {"metadata": {"name": name, "annotations": ann}, "spec": {"replicas": replicas}}


# ----- hashing -----------------------------------------------------------------------------------


def test_fnv32a_reference_values() -> None:
    assert fnv32a(b"") == 0x811C9DC5
    assert fnv32a(b"a") == 0xE40C292C
    assert fnv32a(b"foobar") == 0xBF9CF968


def test_safe_encode_maps_digits_onto_consonants_and_digits() -> None:
    assert safe_encode("0123456789") == "456789bcdf"
    assert not re.search(r"[aeiou013]", safe_encode("3141592653"))


def test_hash_is_stable_label_safe_and_follows_the_template() -> None:
    first = compute_hash(TEMPLATE)
    assert first == compute_hash({"spec": TEMPLATE["spec"], "metadata": {"labels": {"app": "hello"}}})
    assert re.fullmatch(r"[bcdfghjklmnpqrstvwxz2456789]{1,10}", first)
    changed = {**TEMPLATE, "spec": {"containers": [{"name": "x", "image": "y"}]}}
    assert compute_hash(changed) != first


def test_hash_ignores_empty_values_and_moves_with_the_collision_count() -> None:
    noisy = {"metadata": {"labels": {"app": "hello"}, "annotations": {}, "creationTimestamp": None},
             "spec": {"containers": [{"name": "x", "image": "x"}], "volumes": []}}
    assert compute_hash(noisy) == compute_hash(TEMPLATE)
    assert len({compute_hash(TEMPLATE), compute_hash(TEMPLATE, 0), compute_hash(TEMPLATE, 1)}) == 3


def test_equal_ignore_hash() -> None:
    hashed = {"metadata": {"labels": {"app": "hello", "pod-template-hash": "abc"}}, "spec": TEMPLATE["spec"]}
    assert equal_ignore_hash(hashed, TEMPLATE)
    other = {"metadata": {"labels": {"app": "hello"}}, "spec": {"containers": [{"name": "x", "image": "z"}]}}
    assert not equal_ignore_hash(hashed, other)


# ----- fenceposts --------------------------------------------------------------------------------


@pytest.mark.parametrize(("surge", "unavailable", "desired", "expected"), [
    (1, 0, 3, (1, 0)),
    ("25%", "25%", 10, (3, 2)),     # 2.5: surge rounds up, unavailable rounds down
    ("25%", "25%", 3, (1, 0)),
    ("50%", "50%", 5, (3, 2)),
    ("30%", "30%", 1, (1, 0)),
    ("0%", "0%", 4, (0, 1)),        # both zero would never progress
    (0, 0, 4, (0, 1)),
    ("100%", 2, 4, (4, 2)),
])
def test_resolve_fenceposts(surge: Any, unavailable: Any, desired: int, expected: tuple[int, int]) -> None:
    assert resolve_fenceposts(surge, unavailable, desired) == expected


def test_invalid_int_or_string() -> None:
    with pytest.raises(ValueError):
        resolve_fenceposts("three", 1, 3)
    with pytest.raises(ValueError):
        resolve_fenceposts("x%", 1, 3)


def test_max_unavailable_is_capped_and_zero_for_recreate_or_empty() -> None:
    assert max_unavailable(deployment(2, 0, 5)) == 2
    assert max_unavailable(deployment(0, 1, 1)) == 0
    assert max_unavailable(deployment(3, kind="Recreate")) == 0
    assert max_surge(deployment(3, kind="Recreate")) == 0
    assert max_surge(deployment(10)) == 3


def test_new_rs_grows_within_surge_but_never_past_replicas() -> None:
    d = deployment(3, 1, 0)
    old, new = rs("old", 3), rs("new", 0)
    assert new_rs_new_replicas(d, [old, new], new) == 1
    assert new_rs_new_replicas(d, [rs("old", 3), rs("new", 1)], rs("new", 1)) == 1  # at 4 = 3 + surge
    assert new_rs_new_replicas(d, [rs("old", 1), rs("new", 2)], rs("new", 2)) == 3
    assert new_rs_new_replicas(deployment(10), [rs("old", 10), new], new) == 3
    assert new_rs_new_replicas(deployment(3, kind="Recreate"), [old, new], new) == 3


# ----- revisions ---------------------------------------------------------------------------------


def test_max_and_last_revision() -> None:
    rss = [rs("a", revision="1"), rs("b", revision="4"), rs("c", revision="2"), rs("d")]
    assert max_revision(rss) == 4
    assert last_revision(rss) == 2
    assert last_revision([rs("a", revision="1")]) == 0


def test_new_replica_set_annotations() -> None:
    d = deployment(3, annotations={"kubernetes.io/change-cause": "v2", REVISION: "7",
                                   "kubectl.kubernetes.io/last-applied-configuration": "{}"})
    new = rs("new", 1)
    assert set_new_rs_annotations(d, new, 3, exists=False)
    assert new["metadata"]["annotations"] == {"kubernetes.io/change-cause": "v2", REVISION: "3",
                                              DESIRED_REPLICAS: "3", MAX_REPLICAS: "4"}
    assert not set_new_rs_annotations(d, new, 3, exists=True)


def test_reused_replica_set_takes_the_new_revision_and_keeps_history() -> None:
    d = deployment(3)
    old = rs("old", revision="1")
    assert set_new_rs_annotations(d, old, 4, exists=True)
    assert (old["metadata"]["annotations"][REVISION], old["metadata"]["annotations"][REVISION_HISTORY]) == ("4", "1")
    set_new_rs_annotations(d, old, 6, exists=True)
    assert old["metadata"]["annotations"][REVISION_HISTORY] == "1,4"
    assert not set_new_rs_annotations(d, old, 5, exists=True), "a revision never goes down"


def test_revision_history_is_trimmed_from_the_oldest() -> None:
    old = rs("old", revision="30", annotations={REVISION_HISTORY: "10,20"})
    set_new_rs_annotations(deployment(), old, 40, exists=True, history_limit=6)
    assert old["metadata"]["annotations"][REVISION_HISTORY] == "20,30"
