"""The scheduling framework, small: plugin protocols, filter statuses, the registry and a profile.

A decision runs every *filter* plugin on a node until one rejects it (returning a `Status` with the
reasons `kubectl describe` will show), then every *score* plugin on the nodes that passed. Plugins
see a `PodInfo` (the pod with its precomputed requests, ports, tolerations...) and a `NodeInfo`
(the node with what is already placed on it, assumed pods included).

`prefilter(pod)`/`prescore(pod)` answer upstream's PreFilter/PreScore "Skip": a plugin that cannot matter for a pod
(no host ports, no affinity, ...) is left out of its whole cycle, which is most of what keeps a
decision cheap over thousands of nodes. Scores are integers 0-100; a plugin whose raw scores are
on another scale rescales them in `normalize` (upstream's NormalizeScore), then the profile's
weights apply.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Protocol, runtime_checkable

from kubelite.scheduler.cache import NodeInfo
from kubelite.scheduler.podinfo import PodInfo

MAX_NODE_SCORE = 100


class Code(IntEnum):
    UNSCHEDULABLE = 2  # another placement of other pods (preemption) could make the node fit
    UNSCHEDULABLE_AND_UNRESOLVABLE = 3  # nothing short of changing the node or the pod helps


@dataclass(frozen=True, slots=True)
class Status:
    """Why a filter rejected a node; every reason counts once in the FailedScheduling summary."""

    code: Code
    reasons: tuple[str, ...]
    plugin: str = ""

    @classmethod
    def unschedulable(cls, *reasons: str, plugin: str = "") -> Status:
        return cls(Code.UNSCHEDULABLE, reasons, plugin)

    @classmethod
    def unresolvable(cls, *reasons: str, plugin: str = "") -> Status:
        return cls(Code.UNSCHEDULABLE_AND_UNRESOLVABLE, reasons, plugin)


@runtime_checkable
class Plugin(Protocol):
    name: str


@runtime_checkable
class FilterPlugin(Plugin, Protocol):
    def prefilter(self, pod: PodInfo) -> bool:
        """False when the filter cannot reject any node for this pod (skipped for the cycle)."""
        ...

    def filter(self, pod: PodInfo, node: NodeInfo) -> Status | None:
        """None when the node can take the pod, else why not."""
        ...


@runtime_checkable
class ScorePlugin(Plugin, Protocol):
    def prescore(self, pod: PodInfo) -> bool:
        """False when the plugin has nothing to say about this pod (skipped for the cycle)."""
        ...

    def score(self, pod: PodInfo, node: NodeInfo) -> int:
        """How well the node suits the pod, 0-100 (or a raw value `normalize` rescales)."""
        ...

    def normalize(self, pod: PodInfo, scores: list[int]) -> None:
        """Rescale raw scores in place to 0-100 (a no-op for plugins that score 0-100 already)."""
        ...


PluginFactory = Callable[[], Plugin]


class Registry:
    """Plugin factories by name, as upstream's in-tree registry."""

    def __init__(self, factories: dict[str, PluginFactory] | None = None) -> None:
        self.factories: dict[str, PluginFactory] = dict(factories or {})

    def register(self, name: str, factory: PluginFactory) -> None:
        if name in self.factories:
            raise ValueError(f"plugin {name!r} registered twice")
        self.factories[name] = factory

    def build(self, name: str) -> Plugin:
        try:
            return self.factories[name]()
        except KeyError:
            raise ValueError(f"unknown scheduler plugin {name!r}; known: {', '.join(self.factories)}") from None


@dataclass
class Profile:
    """The plugins one scheduler name runs: filters in order, scores with their weights."""

    filters: list[FilterPlugin] = field(default_factory=list)
    scores: list[tuple[ScorePlugin, int]] = field(default_factory=list)

    @classmethod
    def build(cls, registry: Registry, *, filters: Iterable[str], scores: Iterable[tuple[str, int]]) -> Profile:
        built: dict[str, Plugin] = {}

        def get(name: str) -> Plugin:
            if name not in built:  # one instance per name even when it both filters and scores
                built[name] = registry.build(name)
            return built[name]

        filter_plugins = [get(name) for name in filters]
        score_plugins = [(get(name), weight) for name, weight in scores]
        for plugin in filter_plugins:
            if not isinstance(plugin, FilterPlugin):
                raise ValueError(f"plugin {plugin.name} has no filter")
        for plugin, _ in score_plugins:
            if not isinstance(plugin, ScorePlugin):
                raise ValueError(f"plugin {plugin.name} has no score")
        return cls(filters=filter_plugins, scores=score_plugins)  # type: ignore[arg-type]

    def filters_for(self, pod: PodInfo) -> list[FilterPlugin]:
        return [p for p in self.filters if p.prefilter(pod)]

    def scores_for(self, pod: PodInfo) -> list[tuple[ScorePlugin, int]]:
        return [(p, w) for p, w in self.scores if p.prescore(pod)]


def default_normalize(scores: list[int], *, reverse: bool = False) -> None:
    """Upstream's DefaultNormalizeScore: scale so the highest becomes 100 (or 0 when reversed)."""
    highest = max(scores, default=0)
    if highest == 0:
        if reverse:
            scores[:] = [MAX_NODE_SCORE] * len(scores)
        return
    for i, score in enumerate(scores):
        scaled = MAX_NODE_SCORE * score // highest
        scores[i] = MAX_NODE_SCORE - scaled if reverse else scaled
