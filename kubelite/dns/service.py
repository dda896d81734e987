"""The `kube-dns` Service in kube-system, as a CoreDNS install defines it, so pods' resolv.conf
nameserver (the DNS Service IP) is a real Service and `kubectl cluster-info` lists "CoreDNS".

It has no selector: the DNS server is part of kubelite, not pods, so no controller writes its
endpoints. Pure (an object builder); the API server's bootstrap creates it. Kept free of
dnspython imports so the API server does not load the DNS library to build it.
"""

from __future__ import annotations

from typing import Any

NAME = "kube-dns"
NAMESPACE = "kube-system"
LABELS = {"k8s-app": "kube-dns", "kubernetes.io/cluster-service": "true", "kubernetes.io/name": "CoreDNS"}


def kube_dns_service(cluster_ip: str) -> dict[str, Any]:
    return {
        "metadata": {"name": NAME, "namespace": NAMESPACE, "labels": dict(LABELS),
                     "annotations": {"prometheus.io/port": "9153", "prometheus.io/scrape": "true"}},
        "spec": {"type": "ClusterIP", "clusterIP": cluster_ip, "sessionAffinity": "None",
                 "ports": [{"name": "dns", "port": 53, "protocol": "UDP", "targetPort": 53},
                           {"name": "dns-tcp", "port": 53, "protocol": "TCP", "targetPort": 53},
                           {"name": "metrics", "port": 9153, "protocol": "TCP", "targetPort": 9153}]},
    }
