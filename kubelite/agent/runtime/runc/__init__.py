"""The runc container runtime: pods as runc containers under conmon, networked by the CNI
plugins (see `runtime.py` for the data flow and the module map).

The package re-exports its public names lazily (module `__getattr__`): importing one helper
module (`kubelite.agent.runtime.runc.rootfs`, as the image builder does) must not pull in the
whole pod runtime and, through it, the API client and aiohttp (a quarter of a second of a CLI
command's start).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from kubelite.agent.runtime.runc.runtime import ContainerNotRunning, RuncConfig, RuncRuntime
    from kubelite.agent.runtime.runc.spec import SpecError

_EXPORTS = {
    "ContainerNotRunning": "kubelite.agent.runtime.runc.runtime",
    "RuncConfig": "kubelite.agent.runtime.runc.runtime",
    "RuncRuntime": "kubelite.agent.runtime.runc.runtime",
    "SpecError": "kubelite.agent.runtime.runc.spec",
}

__all__ = ["ContainerNotRunning", "RuncConfig", "RuncRuntime", "SpecError"]


def __getattr__(name: str) -> Any:
    # AttributeError for anything else, so `from ... runc import rootfs` still imports the submodule
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # once resolved, a plain attribute
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
