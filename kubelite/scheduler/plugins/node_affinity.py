"""NodeAffinity: spec.nodeSelector and requiredDuringSchedulingIgnoredDuringExecution must match
the node; preferredDuringSchedulingIgnoredDuringExecution terms add their weights to the score.

Semantics are upstream's (component-helpers nodeaffinity): nodeSelector labels all match exactly;
required terms are ORed, a term's matchExpressions and matchFields ANDed; a term with neither, or
with a requirement that does not parse (unknown operator, Gt/Lt without one integer, a field other
than metadata.name), matches no node. NotIn and DoesNotExist match nodes without the label.
The pod's terms are compiled once per cycle into `pod.extra[NAME]`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kubelite.scheduler.cache import NodeInfo
from kubelite.scheduler.framework import Status, default_normalize
from kubelite.scheduler.podinfo import Obj, PodInfo

NAME = "NodeAffinity"
REASON = "node(s) didn't match Pod's node affinity/selector"
REJECTED = Status.unresolvable(REASON, plugin=NAME)
REQUIRED = "requiredDuringSchedulingIgnoredDuringExecution"
PREFERRED = "preferredDuringSchedulingIgnoredDuringExecution"


@dataclass(frozen=True, slots=True)
class Requirement:
    key: str
    operator: str
    values: frozenset[str]
    bound: int = 0

    def matches(self, labels: dict[str, str]) -> bool:
        op, present = self.operator, self.key in labels
        if op == "In":
            return present and labels[self.key] in self.values
        if op == "NotIn":
            return not present or labels[self.key] not in self.values
        if op == "Exists":
            return present
        if op == "DoesNotExist":
            return not present
        value = _integer(labels.get(self.key))
        if value is None:
            return False
        return value > self.bound if op == "Gt" else value < self.bound


def _integer(text: Any) -> int | None:
    try:
        return int(str(text), 10) if text is not None else None
    except ValueError:
        return None


def _requirement(expr: Obj, *, field: bool) -> Requirement | None:
    """A compiled requirement, or None when it does not parse (and so matches nothing)."""
    key, op = str(expr.get("key") or ""), str(expr.get("operator") or "")
    values = [str(v) for v in expr.get("values") or []]
    if field and (key != "metadata.name" or op not in ("In", "NotIn") or len(values) != 1):
        return None
    if op in ("In", "NotIn") and values:
        return Requirement(key, op, frozenset(values))
    if op in ("Exists", "DoesNotExist") and not values:
        return Requirement(key, op, frozenset())
    if op in ("Gt", "Lt") and len(values) == 1 and (bound := _integer(values[0])) is not None:
        return Requirement(key, op, frozenset(), bound)
    return None


@dataclass(frozen=True, slots=True)
class Term:
    labels: tuple[Requirement, ...]
    fields: tuple[Requirement, ...]
    valid: bool

    @classmethod
    def compile(cls, term: Any) -> Term:
        term = term if isinstance(term, dict) else {}
        labels = [_requirement(e, field=False) for e in term.get("matchExpressions") or []]
        fields = [_requirement(e, field=True) for e in term.get("matchFields") or []]
        valid = bool(labels or fields) and None not in labels and None not in fields
        return cls(tuple(r for r in labels if r), tuple(r for r in fields if r), valid)

    def matches(self, node: NodeInfo) -> bool:
        if not self.valid:
            return False
        name = {"metadata.name": node.name}
        return all(r.matches(node.labels) for r in self.labels) and all(r.matches(name) for r in self.fields)


@dataclass(frozen=True, slots=True)
class CompiledAffinity:
    selector: tuple[tuple[str, str], ...]
    required: tuple[Term, ...] | None  # None: no required affinity at all
    preferred: tuple[tuple[int, Term], ...]

    def required_match(self, node: NodeInfo) -> bool:
        labels = node.labels
        if any(labels.get(k) != v for k, v in self.selector):
            return False
        return self.required is None or any(term.matches(node) for term in self.required)


def compile_affinity(pod: PodInfo) -> CompiledAffinity:
    cached = pod.extra.get(NAME)
    if cached is not None:
        return cached  # type: ignore[no-any-return]
    affinity = pod.affinity or {}
    required_spec = affinity.get(REQUIRED)
    required = None
    if isinstance(required_spec, dict):
        required = tuple(Term.compile(t) for t in required_spec.get("nodeSelectorTerms") or [])
    preferred = tuple((int(p.get("weight") or 0), Term.compile(p.get("preference")))
                      for p in affinity.get(PREFERRED) or [] if isinstance(p, dict))
    compiled = CompiledAffinity(tuple((str(k), str(v)) for k, v in pod.node_selector.items()), required,
                                preferred)
    pod.extra[NAME] = compiled
    return compiled


class NodeAffinity:
    name = NAME

    def prefilter(self, pod: PodInfo) -> bool:
        compiled = compile_affinity(pod)
        return bool(compiled.selector) or compiled.required is not None

    def filter(self, pod: PodInfo, node: NodeInfo) -> Status | None:
        return None if compile_affinity(pod).required_match(node) else REJECTED

    def prescore(self, pod: PodInfo) -> bool:
        return bool(compile_affinity(pod).preferred)

    def score(self, pod: PodInfo, node: NodeInfo) -> int:
        return sum(weight for weight, term in compile_affinity(pod).preferred if term.matches(node))

    def normalize(self, pod: PodInfo, scores: list[int]) -> None:
        default_normalize(scores)
