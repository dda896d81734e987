"""The in-tree plugins and the default profile (upstream's default plugin set and weights, for
the plugins kubelite has)."""

from __future__ import annotations

from kubelite.scheduler.framework import Profile, Registry
from kubelite.scheduler.plugins.balanced_allocation import BalancedAllocation
from kubelite.scheduler.plugins.node_affinity import NodeAffinity
from kubelite.scheduler.plugins.node_name import NodeName
from kubelite.scheduler.plugins.node_ports import NodePorts
from kubelite.scheduler.plugins.node_resources_fit import NodeResourcesFit
from kubelite.scheduler.plugins.node_unschedulable import NodeUnschedulable
from kubelite.scheduler.plugins.pod_topology_spread import PodTopologySpread
from kubelite.scheduler.plugins.taint_toleration import TaintToleration

IN_TREE = Registry({
    "NodeName": NodeName,
    "NodeUnschedulable": NodeUnschedulable,
    "TaintToleration": TaintToleration,
    "NodeAffinity": NodeAffinity,
    "NodePorts": NodePorts,
    "NodeResourcesFit": NodeResourcesFit,
    "NodeResourcesBalancedAllocation": BalancedAllocation,
    "PodTopologySpread": PodTopologySpread,
})

# upstream's filter order (cheap, decisive checks first)
DEFAULT_FILTERS = ("NodeUnschedulable", "NodeName", "TaintToleration", "NodeAffinity", "NodePorts",
                   "NodeResourcesFit")
DEFAULT_SCORES = (("TaintToleration", 3), ("NodeAffinity", 2), ("PodTopologySpread", 2),
                  ("NodeResourcesFit", 1), ("NodeResourcesBalancedAllocation", 1))


def default_profile() -> Profile:
    return Profile.build(IN_TREE, filters=DEFAULT_FILTERS, scores=DEFAULT_SCORES)


__all__ = ["DEFAULT_FILTERS", "DEFAULT_SCORES", "IN_TREE", "default_profile"]
