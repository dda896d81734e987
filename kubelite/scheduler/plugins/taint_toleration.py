"""TaintToleration: NoSchedule and NoExecute taints must be tolerated (the first untolerated one is
the reason, as upstream); for scoring, fewer untolerated PreferNoSchedule taints is better.

Not-ready, unreachable, pressure and uninitialized nodes are kept away by the taints the node
lifecycle controller and kubelets put on them, through this plugin alone, as upstream does.
"""

from __future__ import annotations

from kubelite.scheduler.cache import NodeInfo
from kubelite.scheduler.framework import Status, default_normalize
from kubelite.scheduler.podinfo import PodInfo, Toleration

NAME = "TaintToleration"


def untolerated(taints: tuple[tuple[str, str, str], ...], tolerations: tuple[Toleration, ...]) \
        -> tuple[str, str, str] | None:
    for key, value, effect in taints:
        if not any(t.tolerates(key, value, effect) for t in tolerations):
            return key, value, effect
    return None


class TaintToleration:
    name = NAME

    def __init__(self) -> None:
        self._statuses: dict[tuple[str, str], Status] = {}

    def prefilter(self, pod: PodInfo) -> bool:
        return True

    def filter(self, pod: PodInfo, node: NodeInfo) -> Status | None:
        if not node.hard_taints:
            return None
        taint = untolerated(node.hard_taints, pod.tolerations)
        if taint is None:
            return None
        status = self._statuses.get(taint[:2])
        if status is None:
            reason = f"node(s) had untolerated taint {{{taint[0]}: {taint[1]}}}"
            status = self._statuses.setdefault(taint[:2], Status.unresolvable(reason, plugin=NAME))
        return status

    def prescore(self, pod: PodInfo) -> bool:
        return True

    def score(self, pod: PodInfo, node: NodeInfo) -> int:
        if not node.soft_taints:
            return 0
        soft = tuple(t for t in pod.tolerations if t.effect in ("", "PreferNoSchedule"))
        return sum(1 for key, value, effect in node.soft_taints
                   if not any(t.tolerates(key, value, effect) for t in soft))

    def normalize(self, pod: PodInfo, scores: list[int]) -> None:
        default_normalize(scores, reverse=True)
