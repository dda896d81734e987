"""The FailedScheduling message, in upstream's words, so tools that parse it keep working:

    0/3 nodes are available: 1 node(s) had untolerated taint {node-role.kubernetes.io/control-plane: },
    2 Insufficient cpu. preemption: 0/3 nodes are available: 3 Preemption is not helpful for scheduling.

The first part is a histogram of every filter reason over the rejected nodes ("<count> <reason>",
sorted as strings, as Go's sort.Strings does). The `preemption:` part is what upstream's
DefaultPreemption PostFilter says when it finds nothing to preempt: per node "Preemption is not
helpful for scheduling" when the node's rejection was unresolvable, "No preemption victims found
for incoming pod" when no lower-priority pod runs there, otherwise the reasons that remain with all
lower-priority pods removed. kubelite does not preempt: when removing lower-priority pods would
make some node fit, upstream would evict them, and here the `preemption:` part is left out.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping

from kubelite.scheduler.algorithm import run_filters
from kubelite.scheduler.cache import NodeInfo
from kubelite.scheduler.framework import Code, FilterPlugin, Status
from kubelite.scheduler.podinfo import PodInfo

NO_NODES = "no nodes available to schedule pods"
NOT_HELPFUL = Status.unresolvable("Preemption is not helpful for scheduling", plugin="DefaultPreemption")
NO_VICTIMS = Status.unresolvable("No preemption victims found for incoming pod", plugin="DefaultPreemption")
NOT_ELIGIBLE = "not eligible due to preemptionPolicy=Never"
NOTE_LENGTH_LIMIT = 1024  # events' `note`/message limit


def fit_error(num_nodes: int, statuses: Mapping[str, Status], *, post_filter: str = "") -> str:
    counts = Counter(reason for status in statuses.values() for reason in status.reasons)
    message = f"0/{num_nodes} nodes are available:"
    histogram = sorted(f"{count} {reason}" for reason, count in counts.items())
    if histogram:
        message += f" {', '.join(histogram)}."
    if post_filter:
        message += f" {post_filter.rstrip('.')}."
    return message


def preemption_message(pod: PodInfo, statuses: Mapping[str, Status], nodes: Mapping[str, NodeInfo],
                       filters: list[FilterPlugin], num_nodes: int) -> str:
    """What DefaultPreemption would report for a pod no node fits ("" if it would preempt)."""
    if pod.preemption_policy == "Never":
        return f"preemption: {NOT_ELIGIBLE}"
    outcome: dict[str, Status] = {}
    for name, status in statuses.items():
        node = nodes.get(name)
        if status.code == Code.UNSCHEDULABLE_AND_UNRESOLVABLE or node is None:
            outcome[name] = NOT_HELPFUL
            continue
        remaining = _without_lower_priority(pod, node, filters)
        if remaining is None:
            return ""  # a preemption candidate exists
        outcome[name] = remaining
    return "preemption: " + fit_error(num_nodes, outcome)


def _without_lower_priority(pod: PodInfo, node: NodeInfo, filters: list[FilterPlugin]) -> Status | None:
    """Why the pod still would not fit with every lower-priority pod evicted (None if it would)."""
    victims = [p for p in node.pods.values() if p.priority < pod.priority]
    if not victims:
        return NO_VICTIMS
    trial = node.clone()
    for victim in victims:
        trial.remove_pod(victim)
    return run_filters(filters, pod, trial)


def failed_scheduling_message(pod: PodInfo, statuses: Mapping[str, Status], nodes: Mapping[str, NodeInfo],
                              filters: list[FilterPlugin], num_nodes: int) -> str:
    if num_nodes == 0:
        return NO_NODES
    post = preemption_message(pod, statuses, nodes, filters, num_nodes)
    return fit_error(num_nodes, statuses, post_filter=post)


def truncate(message: str, limit: int = NOTE_LENGTH_LIMIT) -> str:
    """Upstream's truncateMessage for event notes."""
    return message if len(message) <= limit else message[:limit - 4] + " ..."
