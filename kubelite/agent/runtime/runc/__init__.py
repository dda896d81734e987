"""The runc container runtime: pods as runc containers under conmon, networked by the CNI
plugins (see `runtime.py` for the data flow and the module map)."""

from kubelite.agent.runtime.runc.runtime import ContainerNotRunning, RuncConfig, RuncRuntime
from kubelite.agent.runtime.runc.spec import SpecError

__all__ = ["ContainerNotRunning", "RuncConfig", "RuncRuntime", "SpecError"]
