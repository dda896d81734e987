"""Objects a cluster has from its first start (kube-apiserver's system namespaces controller,
the `kubernetes` Service, and the cluster DNS's `kube-dns` Service). Idempotent: safe on every start."""

from __future__ import annotations

import logging

from kubelite.api.handlers import Api
from kubelite.api.objectmeta import Obj, meta
from kubelite.api.storage import ResourceStorage
from kubelite.cluster.config import ServerConfig
from kubelite.objects.errors import AlreadyExists, Invalid, NotFound

log = logging.getLogger(__name__)

SYSTEM_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")


async def ensure_system_objects(api: Api, config: ServerConfig) -> None:
    namespaces = api.core("namespaces")
    for name in SYSTEM_NAMESPACES:
        await _create_absent(namespaces, None, {"metadata": {"name": name}})
    service = {
        "metadata": {"name": "kubernetes", "labels": {"component": "apiserver", "provider": "kubernetes"}},
        "spec": {"clusterIP": config.kubernetes_service_ip, "type": "ClusterIP", "sessionAffinity": "None",
                 "ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": config.port}]},
    }
    await _create_absent(api.core("services"), "default", service)
    if config.dns:
        from kubelite.dns.service import NAMESPACE, kube_dns_service

        try:
            await _create_absent(api.core("services"), NAMESPACE, kube_dns_service(config.dns_service_ip))
        except NotFound:  # its ClusterIP was taken by a user's Service: the cluster still starts
            log.warning("kube-dns Service not created: %s is in use", config.dns_service_ip)


async def _create_absent(storage: ResourceStorage, namespace: str | None, obj: Obj) -> None:
    name = str(meta(obj)["name"])
    try:
        await storage.create(namespace, obj)
        log.info("created %s %s", storage.rt.kind, name)
    except (AlreadyExists, Invalid):
        # Another server sharing the store may have created it first (its ClusterIP is then taken,
        # which reads as Invalid): fine if it now exists.
        await storage.get(namespace, name)
