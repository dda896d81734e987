"""What the kubelet reads from the API for a pod's containers besides the pod itself: the
ConfigMaps and Secrets its volumes project (`fetch`), and the Services its containers' environment
lists (`service_env`).

Upstream keeps informers for these; a kubelite kubelet reads them when a container starts or a
volume is refreshed, and keeps a namespace's Services for a couple of seconds so that a burst of
starts costs one list. Hollow nodes skip the Services (their runtime ignores env).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from kubelite.agent.env import service_env
from kubelite.client.resources import CONFIGMAPS, SECRETS, SERVICES
from kubelite.objects.errors import NotFound

if TYPE_CHECKING:
    from kubelite.client import Client

Obj = dict[str, Any]
SERVICES_TTL = 2.0  # seconds a namespace's Services are reused for the containers starting meanwhile
MAX_CACHED = 256


class ApiReads:
    def __init__(self, client: Client, *, service_links: bool) -> None:
        self.client = client
        self.service_links = service_links
        self._services: dict[str, tuple[float, list[Obj]]] = {}  # namespace -> (when read, services)

    async def fetch(self, kind: str, namespace: str, name: str) -> Obj | None:
        """A ConfigMap ("configmap") or Secret ("secret"), None when it does not exist."""
        try:
            return await self.client.get(CONFIGMAPS if kind == "configmap" else SECRETS, name, namespace)
        except NotFound:
            return None

    async def service_env(self, pod: Obj) -> dict[str, str]:
        """The service variables of the pod's containers."""
        if not self.service_links:
            return {}
        namespace = str(pod["metadata"].get("namespace") or "")
        enable = (pod.get("spec") or {}).get("enableServiceLinks") is not False
        services = await self._services_of("default")
        if enable and namespace != "default":
            services = [*services, *await self._services_of(namespace)]
        return service_env(services, namespace=namespace, enable_links=enable)

    async def _services_of(self, namespace: str) -> list[Obj]:
        cached = self._services.get(namespace)
        if cached is not None and time.monotonic() - cached[0] < SERVICES_TTL:
            return cached[1]
        items = list((await self.client.list(SERVICES, namespace)).get("items") or [])
        if len(self._services) > MAX_CACHED:
            self._services.clear()
        self._services[namespace] = (time.monotonic(), items)
        return items
