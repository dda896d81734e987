"""The OCI runtime spec (config.json) of one container, computed purely from the pod's sandbox
(`PodContext`) and the container's inputs (`ContainerInputs`: the pod spec container, the image
config, the env and volume mounts the kubelet resolved, the rootfs path).

Namespaces: a new PID and mount namespace per container; network, IPC and UTS are the pod's,
joined by path (a named netns wired by CNI; IPC and UTS namespaces created once per pod and kept
alive by bind mounts, so they outlive any container: no pause process). hostNetwork joins the
host's network and UTS namespaces (no hostname is set), hostIPC the host's IPC, hostPID the host's
PID namespace. Every container also shares the pod's /dev/shm (a tmpfs of the sandbox).

Mounts: containerd's defaults (/proc, /dev, /dev/pts, /dev/shm, /dev/mqueue, /sys, /sys/fs/cgroup,
read-only unless privileged), the pod's /etc/hosts, /etc/hostname and /etc/resolv.conf, then the
kubelet's volume mounts, parents before children. A volume mounted at a default destination
replaces the default. cgroupsPath is relative (`<parent>/<pod uid>/<container id>`), so containers
stay below the agent's own memory cgroup. No rlimits are set: containers inherit the agent's (as
containerd 2 does), since raising them needs CAP_SYS_RESOURCE, which a nested agent may lack.
"""

from __future__ import annotations

import signal
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from kubelite.agent.runtime.interface import Mount
from kubelite.agent.runtime.runc import process, resources
from kubelite.agent.runtime.runc.process import SpecError

Obj = dict[str, Any]
OCI_VERSION = "1.0.2"
MASKED_PATHS = ["/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
                "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi", "/sys/firmware",
                "/sys/devices/virtual/powercap"]
READONLY_PATHS = ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]
PROPAGATION = {"None": "rprivate", "HostToContainer": "rslave", "Bidirectional": "rshared"}

__all__ = ["ContainerInputs", "PodContext", "SpecError", "build_spec", "stop_signal"]


@dataclass(frozen=True)
class PodContext:
    pod: Obj
    hostname: str  # "" on the host network
    netns_path: str | None  # None: the host's network namespace
    ipc_path: str | None  # None: the host's IPC namespace
    uts_path: str | None  # None: the host's UTS namespace
    hosts_path: str
    hostname_path: str
    resolv_path: str
    shm_path: str | None
    cgroup_parent: str  # relative, e.g. "kubelite/<pod uid>"


@dataclass(frozen=True)
class ContainerInputs:
    container: Obj
    container_id: str
    image_config: Obj  # the image config's "config" section (Entrypoint, Cmd, Env, User, ...)
    rootfs: str
    env: Sequence[tuple[str, str]] = ()
    mounts: Sequence[Mount] = ()
    passwd: str | None = None  # the rootfs's /etc/passwd, when it has one
    group: str | None = None
    available_caps: Sequence[str] = process.DEFAULT_CAPS
    pids_limit: int | None = None
    memory_capacity: int = 0  # bytes; 0 leaves oomScoreAdj unset
    min_oom_score_adj: int = -1000  # what this runtime may set (lowering needs CAP_SYS_RESOURCE)


def stop_signal(container: Obj, image_config: Obj) -> int:
    """lifecycle.stopSignal, else the image's StopSignal, else SIGTERM."""
    name = str(((container.get("lifecycle") or {}).get("stopSignal")) or image_config.get("StopSignal") or "")
    if not name:
        return int(signal.SIGTERM)
    if name.isdigit():
        return int(name)
    name = name.upper()
    try:
        return int(signal.Signals[name if name.startswith("SIG") else f"SIG{name}"])
    except KeyError:
        raise SpecError(f"unknown stop signal {name}") from None


def _default_mounts(privileged: bool) -> list[Obj]:
    ro = [] if privileged else ["ro"]
    return [
        {"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid", "noexec", "nodev"]},
        {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
         "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
        {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
         "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
        {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]},
        {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", *ro]},
        {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
         "options": ["nosuid", "noexec", "nodev", "relatime", *ro]},
    ]


def _bind(source: str, destination: str, *, read_only: bool, propagation: str = "rprivate") -> Obj:
    return {"destination": destination, "type": "bind", "source": source,
            "options": ["rbind", propagation, "ro" if read_only else "rw"]}


def _depth(path: str) -> int:
    return len([p for p in path.split("/") if p])


def mounts(ctx: PodContext, inputs: ContainerInputs) -> list[Obj]:
    sc = inputs.container.get("securityContext") or {}
    read_only_root = bool(sc.get("readOnlyRootFilesystem"))
    user_dests = {m.container_path.rstrip("/") or "/" for m in inputs.mounts}
    result = [m for m in _default_mounts(bool(sc.get("privileged"))) if m["destination"] not in user_dests]
    if "/dev/shm" not in user_dests:
        if ctx.shm_path:
            result.append(_bind(ctx.shm_path, "/dev/shm", read_only=False))
        else:
            result.append({"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
                           "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]})
    for source, dest in ((ctx.hosts_path, "/etc/hosts"), (ctx.hostname_path, "/etc/hostname"),
                         (ctx.resolv_path, "/etc/resolv.conf")):
        if dest not in user_dests:
            result.append(_bind(source, dest, read_only=read_only_root))
    volumes = sorted(inputs.mounts, key=lambda m: _depth(m.container_path))
    for m in volumes:
        result.append(_bind(m.host_path, m.container_path, read_only=m.read_only,
                            propagation=PROPAGATION.get(m.propagation, "rprivate")))
    return result


def namespaces(ctx: PodContext) -> list[Obj]:
    spec = ctx.pod.get("spec") or {}
    result: list[Obj] = [{"type": "mount"}]
    if not spec.get("hostPID"):
        result.append({"type": "pid"})
    for kind, path in (("network", ctx.netns_path), ("ipc", ctx.ipc_path), ("uts", ctx.uts_path)):
        if path is not None:
            result.append({"type": kind, "path": path})
    return result


def _process(ctx: PodContext, inputs: ContainerInputs) -> Obj:
    container, image = inputs.container, inputs.image_config
    env_map = dict(inputs.env)
    tty = bool(container.get("tty"))
    proc: Obj = {
        "terminal": tty,
        "user": process.resolve_user(ctx.pod, container, image, passwd=inputs.passwd, group=inputs.group),
        "args": process.merge_args(container, image, env_map),
        "env": process.merge_env(image.get("Env") or [], inputs.env, hostname=ctx.hostname, tty=tty),
        "cwd": str(container.get("workingDir") or image.get("WorkingDir") or "/"),
        "noNewPrivileges": process.no_new_privileges(container),
    }
    caps = process.capabilities(container, available=inputs.available_caps)
    proc["capabilities"] = {"bounding": caps, "effective": caps, "permitted": caps}
    if inputs.memory_capacity > 0:
        adj = resources.oom_score_adj(ctx.pod, container, memory_capacity=inputs.memory_capacity)
        proc["oomScoreAdj"] = max(adj, inputs.min_oom_score_adj)
    return proc


def _annotations(ctx: PodContext, inputs: ContainerInputs) -> dict[str, str]:
    meta = ctx.pod.get("metadata") or {}
    return {"io.kubernetes.pod.name": str(meta.get("name", "")),
            "io.kubernetes.pod.namespace": str(meta.get("namespace", "")),
            "io.kubernetes.pod.uid": str(meta.get("uid", "")),
            "io.kubernetes.container.name": str(inputs.container.get("name", ""))}


def build_spec(ctx: PodContext, inputs: ContainerInputs) -> Obj:
    """The config.json of the container; raises SpecError when it cannot be configured."""
    sc = inputs.container.get("securityContext") or {}
    privileged = bool(sc.get("privileged"))
    linux_resources = resources.linux_resources(inputs.container, pids_limit=inputs.pids_limit)
    if privileged:
        linux_resources["devices"] = [{"allow": True, "access": "rwm"}]
    linux: Obj = {
        "namespaces": namespaces(ctx),
        "resources": linux_resources,
        "cgroupsPath": f"{ctx.cgroup_parent}/{inputs.container_id}",
    }
    if not privileged:
        linux["maskedPaths"], linux["readonlyPaths"] = list(MASKED_PATHS), list(READONLY_PATHS)
    spec: Obj = {
        "ociVersion": OCI_VERSION,
        "process": _process(ctx, inputs),
        "root": {"path": inputs.rootfs, "readonly": bool(sc.get("readOnlyRootFilesystem"))},
        "mounts": mounts(ctx, inputs),
        "annotations": _annotations(ctx, inputs),
        "linux": linux,
    }
    if ctx.hostname:
        spec["hostname"] = ctx.hostname
    return spec
