"""Pod sandboxes: what a pod has before and after its containers.

create, the record saved before each step so a crash leaves a description of what may exist:
the pod directory; side by side, IPC and UTS namespaces held by bind mounts (hostname = the
pod's) and a named network namespace wired by CNI (address from the podCIDR); then a tmpfs for
/dev/shm and the pod's hosts, hostname and resolv.conf files (they need the address). A hostNetwork pod skips the network namespace and
CNI (its address is the node's) and the UTS namespace; hostIPC skips the IPC namespace.

teardown undoes everything a record names, in reverse, continuing past failures: CNI DEL (always,
with the ADD result and conflist that ADD used; it frees the address even when the namespace is
gone), the network namespace, the IPC/UTS namespace mounts, shm, the pod directory and logs, and
the pod's cgroup directories in every hierarchy. The containers must be gone already (the runtime
removes them first). A teardown that left something behind raises, keeping the record, so the
kubelet's retry finishes the job.
"""

from __future__ import annotations

import asyncio
import shutil
import uuid
from collections.abc import Awaitable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kubelite.agent.clock import now_rfc3339
from kubelite.agent.runtime.interface import SandboxError
from kubelite.agent.runtime.runc import cgroups, cni, etcfiles, netns, rootfs
from kubelite.agent.runtime.runc.state import Layout, SandboxRecord

Obj = dict[str, Any]


@dataclass(frozen=True)
class SandboxSettings:
    netns_prefix: str = "kl"
    cgroup_parent: str = "kubelite"
    cluster_dns: tuple[str, ...] = ()
    cluster_domain: str = "cluster.local"
    node_resolv_conf: Path = Path("/etc/resolv.conf")
    node_hosts: Path = Path("/etc/hosts")


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""


class Sandboxes:
    def __init__(self, layout: Layout, runner: cni.CniRunner, settings: SandboxSettings) -> None:
        self.layout, self.cni, self.settings = layout, runner, settings

    def paths(self, uid: str) -> dict[str, Path]:
        pod_dir = self.layout.pod_dir(uid)
        return {name: pod_dir / name for name in ("hosts", "hostname", "resolv.conf", "ipc", "uts", "shm")}

    def new_record(self, pod: Obj) -> SandboxRecord:
        meta, spec = pod["metadata"], pod.get("spec") or {}
        host_network = bool(spec.get("hostNetwork"))
        hostname = "" if host_network else etcfiles.kernel_hostname(pod, self.settings.cluster_domain)
        rec = SandboxRecord(uid=str(meta["uid"]), name=str(meta.get("name", "")),
                            namespace=str(meta.get("namespace", "")), id=uuid.uuid4().hex + uuid.uuid4().hex,
                            created_at=now_rfc3339(), host_network=host_network, hostname=hostname,
                            log_dir=str(self.layout.log_root / log_dir_name(meta)),
                            pod={"metadata": dict(meta), "spec": dict(spec)})
        self.layout.save(rec)
        return rec

    async def build(self, rec: SandboxRecord, pod: Obj, *, host_ip: str, subnet: str | None) -> None:
        """Create what `rec` describes; on failure everything is torn down again and SandboxError
        raised (the record is forgotten unless the teardown itself left something behind)."""
        if not rec.host_network and not subnet:
            self.layout.forget(rec.uid)
            raise SandboxError("the node has no pod CIDR assigned yet")
        try:
            await self._build(rec, pod, host_ip=host_ip, subnet=subnet)
        except Exception as exc:
            problems = await self.teardown(rec)
            extra = f" (cleanup: {'; '.join(problems)})" if problems else ""
            raise SandboxError(f"failed to set up sandbox for pod {rec.namespace}/{rec.name}: {exc}{extra}") from exc

    async def _build(self, rec: SandboxRecord, pod: Obj, *, host_ip: str, subnet: str | None) -> None:
        spec, paths = pod.get("spec") or {}, self.paths(rec.uid)
        self.layout.pod_dir(rec.uid).mkdir(parents=True, exist_ok=True)
        Path(rec.log_dir).mkdir(parents=True, exist_ok=True)
        rec.ipc_ns, rec.uts_ns = not spec.get("hostIPC"), not rec.host_network
        if not rec.host_network:
            rec.netns = f"{self.settings.netns_prefix}-{rec.uid}"
            rec.cni_conflist = cni.conflist(self.cni.settings, subnet=str(subnet), data_dir=self.layout.cni / "ipam")
            rec.cni_runtime_config = {"portMappings": cni.port_mappings(pod)}
        else:
            rec.ips = [host_ip]
        self.layout.save(rec)
        # independent steps run side by side: together they are most of a pod's startup
        steps = [netns.create_pod_namespaces(ipc=paths["ipc"] if rec.ipc_ns else None,
                                             uts=paths["uts"] if rec.uts_ns else None, hostname=rec.hostname)]
        if not rec.host_network:
            steps.append(self._network(rec, pod))
        await gather_all(*steps)
        rec.shm = True
        self.layout.save(rec)
        rootfs.mount_shm(paths["shm"])
        self._write_etc(rec, pod)
        rec.ready = True
        self.layout.save(rec)

    async def _network(self, rec: SandboxRecord, pod: Obj) -> None:
        assert rec.cni_conflist is not None
        path = await netns.add_netns(rec.netns)
        result = await self.cni.add(rec.cni_conflist, container_id=rec.id, netns=str(path),
                                    runtime_config=rec.cni_runtime_config)
        rec.cni_result, rec.ips = result, cni.result_ips(result)
        self.layout.save(rec)

    def _write_etc(self, rec: SandboxRecord, pod: Obj) -> None:
        s, paths = self.settings, self.paths(rec.uid)
        hosts = etcfiles.hosts_file(pod, rec.ips, cluster_domain=s.cluster_domain, node_hosts=_read(s.node_hosts))
        dns = etcfiles.pod_dns(pod, cluster_dns=s.cluster_dns, cluster_domain=s.cluster_domain,
                               node_resolv=_read(s.node_resolv_conf))
        paths["hosts"].write_text(hosts)
        paths["resolv.conf"].write_text(etcfiles.resolv_conf(dns))
        hostname = rec.hostname or _read(Path("/proc/sys/kernel/hostname")).strip()
        paths["hostname"].write_text(hostname + "\n")

    async def teardown(self, rec: SandboxRecord) -> list[str]:
        """Remove everything the record names; what could not be removed (the record stays then)."""
        problems: list[str] = []
        paths = self.paths(rec.uid)
        if rec.cni_conflist is not None:
            path = netns.netns_path(rec.netns) if rec.netns else None
            try:
                await self.cni.delete(rec.cni_conflist, container_id=rec.id,
                                      netns=str(path) if path is not None and path.exists() else "",
                                      runtime_config=rec.cni_runtime_config, prev_result=rec.cni_result)
            except cni.CniError as exc:
                problems.append(str(exc))
        for step in (self._drop_netns(rec), self._drop_files(rec, paths)):
            try:
                await step
            except (OSError, netns.NamespaceError, rootfs.RootfsError) as exc:
                problems.append(str(exc))
        problems += [f"cgroup {d} still in use" for d in cgroups.remove(rec.cgroup_dirs)]
        if problems:
            rec.ready = False
            self.layout.save(rec)
        else:
            self.layout.forget(rec.uid)
        return problems

    async def _drop_netns(self, rec: SandboxRecord) -> None:
        if rec.netns:
            await netns.delete_netns(rec.netns)

    async def _drop_files(self, rec: SandboxRecord, paths: dict[str, Path]) -> None:
        for name in ("ipc", "uts"):
            netns.release_ns_file(paths[name])
        rootfs.remove_tree(self.layout.pod_dir(rec.uid))
        if rec.log_dir:
            shutil.rmtree(rec.log_dir, ignore_errors=True)


async def gather_all(*steps: Awaitable[Any]) -> None:
    """Run `steps` concurrently; every one finishes (nothing is left half-done behind a failure)
    before the first error is raised."""
    results = await asyncio.gather(*steps, return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException):
            raise result


def log_dir_name(meta: Obj) -> str:
    """The pod's log directory name, as upstream's kubelet names it under /var/log/pods."""
    return f"{meta.get('namespace', '')}_{meta.get('name', '')}_{meta.get('uid', '')}"
