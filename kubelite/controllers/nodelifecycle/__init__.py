"""Node lifecycle: node health from Leases and heartbeats, condition taints, taint-based eviction.

`controller.py` does the I/O; `health.py` and `taints.py` hold the decisions, pure."""

from kubelite.controllers.nodelifecycle.controller import NodeLifecycleController

__all__ = ["NodeLifecycleController"]
