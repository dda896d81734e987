"""One scheduling decision: filter a sample of nodes, score the feasible ones, pick the best.

Sampling is upstream's `percentageOfNodesToScore`: with 100 nodes or more, stop filtering once
`num_feasible_nodes_to_find` nodes passed (adaptive by default: 50% - nodes/125, at least 5% and
at least 100 nodes), and start the next decision where this one stopped, so every node gets its
turn. A pod that fits nowhere has visited every node, so its rejection reasons cover the cluster.
Ties between the best scores are broken at random, as upstream.

Pure and synchronous: it reads the cache and never awaits, so no informer event can change the
cache in the middle of a decision.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from kubelite.scheduler.cache import Cache, NodeInfo
from kubelite.scheduler.framework import FilterPlugin, Profile, Status
from kubelite.scheduler.podinfo import PodInfo

MIN_FEASIBLE_NODES_TO_FIND = 100
MIN_FEASIBLE_NODES_PERCENTAGE = 5
ADAPTIVE_BASE_PERCENTAGE = 50


def num_feasible_nodes_to_find(num_nodes: int, percentage: int = 0) -> int:
    """How many feasible nodes are enough (upstream's numFeasibleNodesToFind)."""
    if num_nodes < MIN_FEASIBLE_NODES_TO_FIND or percentage >= 100:
        return num_nodes
    if percentage <= 0:
        percentage = max(ADAPTIVE_BASE_PERCENTAGE - num_nodes // 125, MIN_FEASIBLE_NODES_PERCENTAGE)
    return max(num_nodes * percentage // 100, MIN_FEASIBLE_NODES_TO_FIND)


@dataclass
class Decision:
    node: str | None
    num_nodes: int
    evaluated: int = 0
    feasible: int = 0
    statuses: dict[str, Status] = field(default_factory=dict)  # rejected nodes, by name

    @property
    def rejecting_plugins(self) -> set[str]:
        return {s.plugin for s in self.statuses.values()}


def run_filters(filters: list[FilterPlugin], pod: PodInfo, node: NodeInfo) -> Status | None:
    """The first rejection, or None (the same as find_feasible's inlined loop, for what-ifs)."""
    for plugin in filters:
        status = plugin.filter(pod, node)
        if status is not None:
            return status
    return None


def select_host(nodes: list[NodeInfo], totals: list[int], rng: random.Random) -> NodeInfo:
    """The highest total; among equal totals each is equally likely (as upstream's reservoir
    sampling, with one random draw)."""
    best = max(totals)
    ties = [i for i, score in enumerate(totals) if score == best]
    return nodes[ties[0] if len(ties) == 1 else rng.choice(ties)]


class Algorithm:
    def __init__(self, cache: Cache, profile: Profile, *, percentage_of_nodes_to_score: int = 0,
                 rng: random.Random | None = None) -> None:
        self.cache = cache
        self.profile = profile
        self.percentage = percentage_of_nodes_to_score
        self.rng = rng or random.Random()
        self.next_start_index = 0

    def schedule(self, pod: PodInfo) -> Decision:
        nodes = self.cache.order
        decision = Decision(None, len(nodes))
        if not nodes:
            return decision
        feasible = self.find_feasible(pod, nodes, decision)
        decision.feasible = len(feasible)
        if len(feasible) == 1:
            decision.node = feasible[0].name
        elif feasible:
            decision.node = select_host(feasible, self.prioritize(pod, feasible), self.rng).name
        return decision

    def find_feasible(self, pod: PodInfo, nodes: list[NodeInfo], decision: Decision) -> list[NodeInfo]:
        wanted = num_feasible_nodes_to_find(len(nodes), self.percentage)
        filters = self.profile.filters_for(pod)
        start = self.next_start_index % len(nodes)
        checks = [plugin.filter for plugin in filters]
        feasible: list[NodeInfo] = []
        statuses = decision.statuses
        processed = 0
        for node in nodes[start:] + nodes[:start]:  # the hot loop, with run_filters inlined
            processed += 1
            for check in checks:
                status = check(pod, node)
                if status is not None:
                    statuses[node.name] = status
                    break
            else:
                feasible.append(node)
                if len(feasible) >= wanted:
                    break
        decision.evaluated = processed
        self.next_start_index = (start + processed) % len(nodes)
        return feasible

    def prioritize(self, pod: PodInfo, nodes: list[NodeInfo]) -> list[int]:
        """Weighted sum of every relevant score plugin's normalized scores, per node."""
        totals = [0] * len(nodes)
        for plugin, weight in self.profile.scores_for(pod):
            score_of = plugin.score
            scores = [score_of(pod, node) for node in nodes]
            plugin.normalize(pod, scores)
            totals = [total + score * weight for total, score in zip(totals, scores, strict=True)]
        return totals
