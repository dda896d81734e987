"""Which cluster events can make an unschedulable pod fit, by the plugins that rejected it
(upstream's EventsToRegister, without queueing hints).

A node added could help any pod; a node update only helps pods rejected by the plugins that look
at what changed; a placed pod deleted frees resources and ports. Node heartbeats (status
conditions and timestamps) change nothing here, so they move no pod.
"""

from __future__ import annotations

from kubelite.scheduler.podinfo import Obj

ANY: frozenset[str] | None = None  # a node added: every unschedulable pod is worth another try
ASSIGNED_POD_DELETED = frozenset({"NodeResourcesFit", "NodePorts"})
NODE_TAINTS = frozenset({"TaintToleration"})
NODE_LABELS = frozenset({"NodeAffinity", "PodTopologySpread"})
NODE_ALLOCATABLE = frozenset({"NodeResourcesFit"})
NODE_SCHEDULABLE = frozenset({"NodeUnschedulable"})


def node_update_plugins(old: Obj, new: Obj) -> frozenset[str]:
    """The plugins whose rejections a node update could undo (empty: move nothing)."""
    old_spec, new_spec = old.get("spec") or {}, new.get("spec") or {}
    plugins: set[str] = set()
    if old_spec.get("unschedulable") and not new_spec.get("unschedulable"):
        plugins |= NODE_SCHEDULABLE
    if (old_spec.get("taints") or []) != (new_spec.get("taints") or []):
        plugins |= NODE_TAINTS
    if (old.get("metadata") or {}).get("labels") != (new.get("metadata") or {}).get("labels"):
        plugins |= NODE_LABELS
    if (old.get("status") or {}).get("allocatable") != (new.get("status") or {}).get("allocatable"):
        plugins |= NODE_ALLOCATABLE
    return frozenset(plugins)
