"""kube-scheduler for kubelite: `Scheduler(client, options=config).run()` places pending pods.

Modules: `podinfo` (what a pod asks for), `cache` (NodeInfo per node, assumed pods), `queue`
(active / backoff / unschedulable), `framework` (plugin protocols, statuses, registry, profile),
`plugins` (the in-tree filters and scores), `algorithm` (sampling, filtering, scoring, choice),
`messages` (FailedScheduling text), `clusterevents` (what wakes unschedulable pods),
`scheduler` (informers, the loop, binding, events).
"""

from kubelite.scheduler.scheduler import Scheduler

__all__ = ["Scheduler"]
