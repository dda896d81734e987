"""Builders for the API objects the proxy reads (Services, EndpointSlices, Nodes), shared by the
proxy's unit tests."""

from __future__ import annotations

from typing import Any

Obj = dict[str, Any]


def service(name: str, *, ns: str = "ns", cluster_ip: str = "198.19.0.10", kind: str = "ClusterIP",
            ports: list[Obj] | None = None, labels: Obj | None = None, **spec: Any) -> Obj:
    body: Obj = {"type": kind, "clusterIP": cluster_ip, "clusterIPs": [cluster_ip] if cluster_ip != "None" else ["None"],
                 "ports": ports if ports is not None else [{"name": "http", "port": 80, "protocol": "TCP",
                                                            "targetPort": 8080}]}
    status = spec.pop("status", {})
    body.update(spec)
    return {"kind": "Service", "metadata": {"name": name, "namespace": ns, "labels": labels or {},
                                            "resourceVersion": "1"},
            "spec": body, "status": status}


def endpoint(ip: str, *, node: str = "n1", ready: bool | None = True, serving: bool | None = None,
             terminating: bool | None = None) -> Obj:
    conditions: Obj = {}
    for key, value in (("ready", ready), ("serving", serving), ("terminating", terminating)):
        if value is not None:
            conditions[key] = value
    return {"addresses": [ip], "conditions": conditions, "nodeName": node}


def endpoint_slice(svc: str, endpoints: list[Obj], *, ns: str = "ns", name: str = "",
                   ports: list[Obj] | None = None, address_type: str = "IPv4") -> Obj:
    return {"kind": "EndpointSlice", "addressType": address_type,
            "metadata": {"name": name or f"{svc}-abc", "namespace": ns,
                         "labels": {"kubernetes.io/service-name": svc}, "resourceVersion": "1"},
            "endpoints": endpoints,
            "ports": ports if ports is not None else [{"name": "http", "port": 8080, "protocol": "TCP"}]}


def node(name: str, *, ips: list[str], pod_cidr: str = "") -> Obj:
    return {"kind": "Node", "metadata": {"name": name, "resourceVersion": "1"},
            "spec": {"podCIDR": pod_cidr} if pod_cidr else {},
            "status": {"addresses": [{"type": "InternalIP", "address": ip} for ip in ips]
                       + [{"type": "Hostname", "address": name}]}}
