"""Container runtimes a kubelet drives: the interface (`interface.py`) and its implementations
(`fake.py`: hollow containers that run instantly without processes)."""

from kubelite.agent.runtime.interface import (
    ContainerRuntime,
    ContainerState,
    PodRuntimeStatus,
    RuntimeVersion,
    Sandbox,
    SandboxError,
)

__all__ = ["ContainerRuntime", "ContainerState", "PodRuntimeStatus", "RuntimeVersion", "Sandbox", "SandboxError"]
