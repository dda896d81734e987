"""A pod's /etc/hosts, /etc/hostname and /etc/resolv.conf, as upstream's kubelet writes them. Pure:
the caller passes the node's own /etc/hosts and /etc/resolv.conf text.

- hostname: spec.hostname or the pod name, cut to 63 characters without a trailing `-`/`.`;
  with a subdomain the FQDN is `<hostname>.<subdomain>.<ns>.svc.<cluster domain>`
  (setHostnameAsFQDN makes it the kernel hostname);
- hosts: the kubelet-managed header, the pod's addresses mapped to its names, then hostAliases;
  a hostNetwork pod gets the node's file plus hostAliases;
- resolv.conf by dnsPolicy: ClusterFirst → the cluster DNS servers, search
  `<ns>.svc.<domain> svc.<domain> <domain>` + the node's search domains, `options ndots:5`
  (without cluster DNS servers, or for a hostNetwork pod, it degrades to Default);
  ClusterFirstWithHostNet → cluster DNS even on the host network; Default → the node's file;
  None → only dnsConfig. dnsConfig then appends servers and searches and overrides options by name.
  Written in containerd's order: search, nameserver(s), options.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

Obj = dict[str, Any]
MAX_NAMESERVERS = 3
MAX_SEARCHES = 32


def hostname(pod: Obj) -> str:
    spec, meta = pod.get("spec") or {}, pod.get("metadata") or {}
    name = str(spec.get("hostname") or meta.get("name") or "")
    if len(name) > 63:
        name = name[:63].rstrip("-.")
    return name


def fqdn(pod: Obj, cluster_domain: str) -> str:
    spec, meta = pod.get("spec") or {}, pod.get("metadata") or {}
    sub = spec.get("subdomain")
    if not sub:
        return ""
    return f"{hostname(pod)}.{sub}.{meta.get('namespace', 'default')}.svc.{cluster_domain}"


def kernel_hostname(pod: Obj, cluster_domain: str) -> str:
    spec = pod.get("spec") or {}
    full = fqdn(pod, cluster_domain)
    if spec.get("setHostnameAsFQDN") and full:
        return full[:64]
    return hostname(pod)


def _aliases(pod: Obj) -> str:
    lines = []
    for alias in (pod.get("spec") or {}).get("hostAliases") or []:
        names = "\t".join(str(h) for h in alias.get("hostnames") or [])
        lines.append(f"{alias.get('ip')}\t{names}\n")
    return "\n# Entries added by HostAliases.\n" + "".join(lines) if lines else ""


def hosts_file(pod: Obj, pod_ips: Sequence[str], *, cluster_domain: str, node_hosts: str = "") -> str:
    if (pod.get("spec") or {}).get("hostNetwork"):
        return node_hosts + _aliases(pod)
    name, full = hostname(pod), fqdn(pod, cluster_domain)
    lines = ["# Kubernetes-managed hosts file.", "127.0.0.1\tlocalhost",
             "::1\tlocalhost ip6-localhost ip6-loopback", "fe00::0\tip6-localnet", "fe00::0\tip6-mcastprefix",
             "fe00::1\tip6-allnodes", "fe00::2\tip6-allrouters"]
    for ip in pod_ips:
        lines.append(f"{ip}\t{full}\t{name}" if full else f"{ip}\t{name}")
    return "\n".join(lines) + "\n" + _aliases(pod)


@dataclass
class DnsConfig:
    servers: list[str] = field(default_factory=list)
    searches: list[str] = field(default_factory=list)
    options: list[str] = field(default_factory=list)


def parse_resolv_conf(text: str) -> DnsConfig:
    conf = DnsConfig()
    for line in text.splitlines():
        words = line.split("#", 1)[0].split()
        if not words:
            continue
        if words[0] == "nameserver" and len(words) > 1:
            conf.servers.append(words[1])
        elif words[0] in ("search", "domain"):
            conf.searches = words[1:]
        elif words[0] == "options":
            conf.options.extend(words[1:])
    return conf


def _policy(pod: Obj, cluster_dns: Sequence[str]) -> str:
    spec = pod.get("spec") or {}
    policy = str(spec.get("dnsPolicy") or "ClusterFirst")
    if policy == "ClusterFirst" and spec.get("hostNetwork"):
        policy = "Default"
    if policy == "ClusterFirstWithHostNet":
        policy = "ClusterFirst"
    if policy == "ClusterFirst" and not cluster_dns:
        policy = "Default"
    return policy


def _option_name(option: str) -> str:
    return option.split(":", 1)[0]


def pod_dns(pod: Obj, *, cluster_dns: Sequence[str], cluster_domain: str, node_resolv: str) -> DnsConfig:
    policy = _policy(pod, cluster_dns)
    host = parse_resolv_conf(node_resolv)
    ns = (pod.get("metadata") or {}).get("namespace") or "default"
    if policy == "ClusterFirst":
        searches = [f"{ns}.svc.{cluster_domain}", f"svc.{cluster_domain}", cluster_domain] + host.searches
        conf = DnsConfig(list(cluster_dns), searches, ["ndots:5"])
    elif policy == "Default":
        conf = host
    else:
        conf = DnsConfig()
    extra = (pod.get("spec") or {}).get("dnsConfig") or {}
    for server in extra.get("nameservers") or []:
        if server not in conf.servers:
            conf.servers.append(str(server))
    for search in extra.get("searches") or []:
        if search not in conf.searches:
            conf.searches.append(str(search))
    for option in extra.get("options") or []:
        text = f"{option['name']}:{option['value']}" if option.get("value") is not None else str(option["name"])
        conf.options = [o for o in conf.options if _option_name(o) != option["name"]] + [text]
    conf.servers, conf.searches = conf.servers[:MAX_NAMESERVERS], conf.searches[:MAX_SEARCHES]
    return conf


def resolv_conf(conf: DnsConfig) -> str:
    text = ""
    if conf.searches:
        text += f"search {' '.join(conf.searches)}\n"
    for server in conf.servers:
        text += f"nameserver {server}\n"
    if conf.options:
        text += f"options {' '.join(conf.options)}\n"
    return text
