"""The controller manager: shared informers, every enabled controller, one leader at a time.

Controllers are found by name in `CONTROLLERS` (module path and class), so switching one off is a
flag (`--controllers=*,-garbagecollector`) and adding one is an entry here.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
from typing import Any

from kubelite.client import Client, InformerFactory
from kubelite.controllers.base import Controller

log = logging.getLogger(__name__)

CONTROLLERS: dict[str, str] = {
    "deployment": "kubelite.controllers.deployment:DeploymentController",
    "replicaset": "kubelite.controllers.replicaset:ReplicaSetController",
    "garbagecollector": "kubelite.controllers.garbagecollector:GarbageCollector",
    "endpoints": "kubelite.controllers.endpoints:EndpointsController",
    "endpointslice": "kubelite.controllers.endpointslice:EndpointSliceController",
    "namespace": "kubelite.controllers.namespace:NamespaceController",
    "nodeipam": "kubelite.controllers.nodeipam:NodeIpamController",
    "nodelifecycle": "kubelite.controllers.nodelifecycle:NodeLifecycleController",
    "serviceaccount": "kubelite.controllers.serviceaccount:ServiceAccountController",
    "loadbalancer": "kubelite.controllers.loadbalancer:LoadBalancerController",
}


def enabled_controllers(spec: str) -> list[str]:
    """`*` (all), names, and `-name` exclusions, comma-separated, as kube-controller-manager."""
    wanted: list[str] = []
    for item in (part.strip() for part in spec.split(",") if part.strip()):
        if item == "*":
            wanted += [name for name in CONTROLLERS if name not in wanted]
        elif item.startswith("-"):
            wanted = [name for name in wanted if name != item[1:]]
        elif item in CONTROLLERS:
            wanted.append(item)
        else:
            raise ValueError(f"unknown controller {item!r}; known: {', '.join(CONTROLLERS)}")
    return wanted


def _load(name: str) -> type[Controller]:
    module_name, _, class_name = CONTROLLERS[name].partition(":")
    cls: type[Controller] = getattr(importlib.import_module(module_name), class_name)
    return cls


class ControllerManager:
    def __init__(self, client: Client, names: list[str], *, options: Any = None) -> None:
        self.client = client
        self.names = names
        self.options = options
        self.controllers: list[Controller] = []

    async def run(self) -> None:
        informers = InformerFactory(self.client)
        self.controllers = [_load(name)(self.client, informers, options=self.options) for name in self.names]
        informers.start()
        try:
            await informers.wait_synced()
            log.info("controllers running: %s", ", ".join(self.names))
            await asyncio.gather(*(c.run() for c in self.controllers))
        finally:
            for controller in self.controllers:
                controller.stop()
                controller.events.close()
            await informers.stop()
