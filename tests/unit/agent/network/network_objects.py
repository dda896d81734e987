"""Node objects as the pod network reads them, shared by the network unit tests."""

from __future__ import annotations

from typing import Any

Obj = dict[str, Any]


def node(name: str, cidr: str | None = None, ip: str | None = None, *, rv: str = "1", **annotations: str) -> Obj:
    obj: Obj = {"kind": "Node", "apiVersion": "v1", "spec": {}, "status": {},
                "metadata": {"name": name, "annotations": annotations, "resourceVersion": rv}}
    if cidr:
        obj["spec"] = {"podCIDR": cidr, "podCIDRs": [cidr]}
    if ip:
        obj["status"]["addresses"] = [{"type": "Hostname", "address": name}, {"type": "InternalIP", "address": ip}]
    return obj
