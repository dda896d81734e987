"""RuncRuntime: the ContainerRuntime (and StreamingRuntime) that runs pods as runc containers.

Data flow: create_sandbox → `sandbox.py` (netns + CNI, IPC/UTS namespaces, shm, /etc files);
start_container → `launch.py`: the image from the ImageStoreAPI, an overlay rootfs (`rootfs.py`),
the OCI spec (`spec.py`, pure), conmon + runc (`container.py`); a watcher task per running
container awaits its conmon's exit, then records the exit code, deletes the runc container and
its rootfs (logs stay) and calls `on_container_exit(pod uid, name)` (a hook for the kubelet's
pod workers, PLEG-style); stop_container signals and escalates; remove_sandbox removes the
containers, then the sandbox. exec/attach/port-forward: `streams.py`, `netns.py`. Every change is saved in the pod's record (`state.py`) before it is made, so a new
RuncRuntime on the same root (`recover.py`) carries on with running containers untouched.

Invariants: one operation per pod at a time (a lock per pod; waiting for an init container to
finish happens outside it, so a pod can be removed meanwhile); a container name maps to its
current instance, whose restart count is the previous one's + 1; an exited instance's runc state
and rootfs are gone once `cleaned`; container IDs are 64 hex digits (valid runc IDs).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import shutil
import subprocess
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kubelite.agent.runtime.interface import (
    ContainerState,
    Mount,
    PodRuntimeStatus,
    RuntimeVersion,
    Sandbox,
    SandboxError,
)
from kubelite.agent.runtime.runc import netns, streams
from kubelite.agent.runtime.runc.cni import CniRunner, CniSettings
from kubelite.agent.runtime.runc.container import ExitInfo, Runc
from kubelite.agent.runtime.runc.launch import Launcher
from kubelite.agent.runtime.runc.recover import apply_exit, recover, settle
from kubelite.agent.runtime.runc.sandbox import Sandboxes, SandboxSettings
from kubelite.agent.runtime.runc.state import ContainerRecord, Layout, SandboxRecord
from kubelite.agent.runtime.runc.status import container_state, runtime_status
from kubelite.images.api import ImageStoreAPI

log = logging.getLogger(__name__)
Obj = dict[str, Any]
INSTALL_HINT = "install: apt-get install runc conmon containernetworking-plugins"


class ContainerNotRunning(Exception):
    pass


@dataclass(frozen=True)
class RuncConfig:
    root: Path
    log_root: Path | None = None  # default <root>/logs
    runc: str = "runc"
    conmon: str = "conmon"
    cni: CniSettings = field(default_factory=CniSettings)
    sandbox: SandboxSettings = field(default_factory=SandboxSettings)
    pids_limit: int | None = None  # the kubelet's podPidsLimit


class RuncRuntime:
    def __init__(self, config: RuncConfig, images: ImageStoreAPI, *,
                 on_container_exit: Callable[[str, str], None] | None = None) -> None:
        self.config, self.images, self.on_container_exit = config, images, on_container_exit
        self.layout = Layout.at(config.root, config.log_root)
        self.layout.ensure()
        self.runc = Runc(self.layout, runc=config.runc, conmon=config.conmon)
        self.sandboxes = Sandboxes(self.layout, CniRunner(config.cni), config.sandbox)
        self.launcher = Launcher(self.layout, self.runc, self.sandboxes, images,
                                 cgroup_parent=config.sandbox.cgroup_parent, pids_limit=config.pids_limit)
        self.dialer = netns.NetnsDialer()
        self.subnet: str | None = None
        found = recover(self.layout, self.runc, now=time.time())
        self._pods: dict[str, SandboxRecord] = found.sandboxes
        self._unarmed: list[tuple[str, str]] = found.running + found.to_clean
        self._locks: dict[str, asyncio.Lock] = {}
        self._watchers: dict[str, asyncio.Task[None]] = {}
        self._version: RuntimeVersion | None = None

    # ----- node-level -----------------------------------------------------------------------------

    def version(self) -> RuntimeVersion:
        if self._version is None:
            try:
                out = subprocess.run([self.config.runc, "--version"], capture_output=True, text=True,
                                     timeout=10).stdout
                match = re.search(r"runc version (\d+\.\d+\.\d+)", out)
                self._version = RuntimeVersion("runc", match.group(1) if match else "unknown")
            except (OSError, subprocess.SubprocessError):
                return RuntimeVersion("runc", "unknown")
        return self._version

    def readiness(self) -> tuple[bool, bool, str]:
        missing = [b for b in (self.config.runc, self.config.conmon, "ip", "unshare", "setsid")
                   if shutil.which(b) is None]
        problems = [f"{', '.join(missing)} not found"] if missing else []
        if os.geteuid() != 0:
            problems.append("the runc runtime needs root (run the agent as root, or use the hollow runtime)")
        plugins = self.config.cni.missing_plugins()
        net_problem = f"CNI plugins {', '.join(plugins)} not found in {self.config.cni.bin_dir}" if plugins else ""
        message = "; ".join(problems + ([net_problem] if net_problem else []))
        if message:
            message += f" ({INSTALL_HINT})"
        return not problems, not problems and not net_problem, message

    def update_pod_cidr(self, cidr: str) -> None:
        if cidr:
            self.subnet = cidr

    async def close(self) -> None:
        """Stop watching (containers keep running; a new RuncRuntime recovers them)."""
        for task in list(self._watchers.values()):
            task.cancel()
        for task in list(self._watchers.values()):
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self.dialer.close()

    # ----- sandboxes ------------------------------------------------------------------------------

    def _lock(self, uid: str) -> asyncio.Lock:
        return self._locks.setdefault(uid, asyncio.Lock())

    def _arm(self) -> None:
        """Start the watchers of what recovery found, once there is an event loop."""
        pending, self._unarmed = self._unarmed, []
        for uid, name in pending:
            rec = self._pods.get(uid)
            crec = rec.find(name) if rec else None
            if crec is not None:
                self._watch(uid, crec)

    async def create_sandbox(self, pod: Obj, *, host_ip: str) -> Sandbox:
        self._arm()
        uid = str(pod["metadata"]["uid"])
        async with self._lock(uid):
            rec = self._pods.get(uid)
            if rec is not None and rec.ready:
                return runtime_status(rec).sandbox
            if rec is not None:  # an interrupted creation: start over
                await self._remove(rec)
            rec = self.sandboxes.new_record(pod)
            self._pods[uid] = rec
            try:
                await self.sandboxes.build(rec, pod, host_ip=host_ip, subnet=self.subnet)
            except SandboxError:
                if not self.layout.record_path(uid).exists():
                    self._pods.pop(uid, None)
                raise
            return runtime_status(rec).sandbox

    async def remove_sandbox(self, pod_uid: str) -> None:
        self._arm()
        async with self._lock(pod_uid):
            rec = self._pods.get(pod_uid)
            if rec is None:
                return
            await self._remove(rec)
        self._locks.pop(pod_uid, None)

    async def _remove(self, rec: SandboxRecord) -> None:
        for crec in rec.all_containers():
            if self._settle(rec, crec) == "running":
                info = await self.runc.stop(crec.id, stop_signal=crec.stop_signal, grace=0)
                self._record_exit(rec, crec, info)
            await self._clean(crec)
            task = self._watchers.pop(crec.id, None)
            if task is not None:
                task.cancel()
        problems = await self.sandboxes.teardown(rec)
        if problems:
            raise SandboxError(f"removing the sandbox of {rec.namespace}/{rec.name} left: {'; '.join(problems)}")
        self._pods.pop(rec.uid, None)

    def pod_uids(self) -> list[str]:
        """Every pod this runtime holds something for (after a restart: what it recovered), so the
        kubelet can remove the sandboxes of pods deleted while it was away."""
        return list(self._pods)

    def pod_status(self, pod_uid: str) -> PodRuntimeStatus | None:
        """The pod's sandbox and containers; also for a sandbox whose creation failed half-way, so
        that the kubelet still calls remove_sandbox for it."""
        rec = self._pods.get(pod_uid)
        if rec is None:
            return None
        changed = False
        for crec in rec.all_containers():
            if crec.state == "running":
                info = self.runc.exit_info(crec.id)
                if info is not None:
                    apply_exit(crec, info, cgroup_dirs=rec.cgroup_dirs)
                    changed = True
        if changed:
            self.layout.save(rec)
        return runtime_status(rec)

    def _record(self, uid: str) -> SandboxRecord:
        rec = self._pods.get(uid)
        if rec is None or not rec.ready:
            raise SandboxError(f"pod {uid} has no sandbox")
        return rec

    # ----- containers -----------------------------------------------------------------------------

    async def start_container(self, pod_uid: str, container: Obj, *, init: bool = False,
                              env: Sequence[tuple[str, str]] | None = None,
                              mounts: Sequence[Mount] = ()) -> ContainerState:
        """Create and start `container` (restarting it if its last instance exited). `env`: the
        container's environment as the kubelet resolved it (default: its literal `value`s);
        `mounts`: its volumes as the kubelet prepared them. Raises ImageNotFound / InvalidImageName
        (from the image store) and SpecError (a configuration that cannot run); a process that
        cannot start is reported as exited with reason StartError (exit code 128)."""
        self._arm()
        name = str(container["name"])
        async with self._lock(pod_uid):
            rec = self._record(pod_uid)
            table = rec.init_containers if init else rec.containers
            current = table.get(name)
            if current is not None:
                if self._settle(rec, current) == "running":
                    return container_state(current)
                await self._clean(current)
            crec = await self.launcher.launch(rec, container, init=init, env=env, mounts=mounts, previous=current)
            if crec.state == "running":
                self._watch(rec.uid, crec)
        if crec.state == "running" and init and container.get("restartPolicy") != "Always":
            await self._wait_exit(pod_uid, crec)
        return container_state(crec)

    async def stop_container(self, pod_uid: str, name: str, *, grace_seconds: int) -> ContainerState:
        self._arm()
        async with self._lock(pod_uid):
            rec = self._record(pod_uid)
            crec = rec.find(name)
            if crec is None:
                raise KeyError(f"no container {name} in pod {pod_uid}")
            if self._settle(rec, crec) == "running":
                info = await self.runc.stop(crec.id, stop_signal=crec.stop_signal, grace=grace_seconds)
                self._record_exit(rec, crec, info)
            await self._clean(crec)
            self.layout.save(rec)
            return container_state(crec)

    # ----- exits ----------------------------------------------------------------------------------

    def _settle(self, rec: SandboxRecord, crec: ContainerRecord) -> str:
        return settle(crec, self.runc, now=time.time(), cgroup_dirs=rec.cgroup_dirs)

    def _record_exit(self, rec: SandboxRecord, crec: ContainerRecord, info: ExitInfo | None) -> None:
        if crec.state == "exited":
            return
        info = info or self.runc.exit_info(crec.id)
        if info is not None:
            apply_exit(crec, info, cgroup_dirs=rec.cgroup_dirs)
        else:
            self._settle(rec, crec)

    async def _clean(self, crec: ContainerRecord) -> None:
        await self.launcher.clean(crec)

    def _watch(self, uid: str, crec: ContainerRecord) -> None:
        if crec.id in self._watchers:
            return
        task = asyncio.get_running_loop().create_task(self._watch_exit(uid, crec.name, crec.id),
                                                      name=f"runc-exit:{crec.id[:12]}")
        self._watchers[crec.id] = task
        task.add_done_callback(lambda _: self._watchers.pop(crec.id, None))

    async def _watch_exit(self, uid: str, name: str, cid: str) -> None:
        watched = self._find(uid, name, cid)
        info = await self.runc.wait_exit(cid) if watched is not None and watched.state == "running" else None
        async with self._lock(uid):
            crec = self._find(uid, name, cid)
            rec = self._pods.get(uid)
            if crec is None or rec is None:
                return
            self._record_exit(rec, crec, info)
            await self._clean(crec)
            self.layout.save(rec)
        if self.on_container_exit is not None:
            self.on_container_exit(uid, name)

    def _find(self, uid: str, name: str, cid: str) -> ContainerRecord | None:
        rec = self._pods.get(uid)
        crec = rec.find(name) if rec else None
        return crec if crec is not None and crec.id == cid else None

    async def _wait_exit(self, uid: str, crec: ContainerRecord) -> int:
        """The exit code of `crec` once it has exited (and been cleaned up)."""
        task = self._watchers.get(crec.id)
        if task is not None:
            await asyncio.wait({task})
        rec = self._pods.get(uid)
        if crec.state != "exited" and rec is not None:
            info = await self.runc.wait_exit(crec.id)
            async with self._lock(uid):
                self._record_exit(rec, crec, info)
        return int(crec.exit_code if crec.exit_code is not None else 255)

    def container_message(self, pod_uid: str, name: str) -> str:
        """Why the container's current instance ended, when the runtime knows more than its exit
        code (a StartError's runc message), for the terminated state's message."""
        rec = self._pods.get(pod_uid)
        crec = rec.find(name) if rec else None
        return crec.message if crec is not None else ""

    def reopen_log(self, pod_uid: str, name: str) -> bool:
        """conmon reopens the container's log file (CRI ReopenContainerLog): the kubelet renames a
        full log away, then calls this so that new output starts a new file."""
        rec = self._pods.get(pod_uid)
        crec = rec.find(name) if rec else None
        return crec is not None and crec.state == "running" and self.runc.reopen_log(crec.id)

    # ----- streaming ------------------------------------------------------------------------------

    def _running(self, uid: str, name: str) -> ContainerRecord:
        rec = self._record(uid)
        crec = rec.find(name)
        if crec is None:
            raise ContainerNotRunning(f"container {name} not found in pod {rec.namespace}/{rec.name}")
        if self._settle(rec, crec) != "running":
            raise ContainerNotRunning(f"container {name} is not running")
        return crec

    def log_path(self, pod_uid: str, container: str, *, previous: bool = False) -> Path | None:
        rec = self._pods.get(pod_uid)
        crec = rec.find(container) if rec else None
        if crec is None:
            return None
        path = crec.previous_log if previous else crec.log_path
        return Path(path) if path and Path(path).exists() else None

    async def exec(self, pod_uid: str, container: str, command: list[str], *, tty: bool,
                   stdin: bool) -> streams.PipeExecSession | streams.TtyExecSession:
        crec = self._running(pod_uid, container)
        pid_file = self.layout.execs / f"{uuid.uuid4().hex}.pid"
        return await streams.start_exec(self.runc.argv, [crec.id, *command], pid_file=pid_file, tty=tty,
                                        stdin=stdin)

    async def attach(self, pod_uid: str, container: str, *, tty: bool, stdin: bool) -> streams.AttachSession:
        self._arm()
        crec = self._running(pod_uid, container)
        return await streams.open_attach(self.layout.container_dir(crec.id), tty=crec.tty,
                                         wait_exit=lambda: self._wait_exit(pod_uid, crec))

    async def port_forward(self, pod_uid: str, port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        rec = self._record(pod_uid)
        path = netns.netns_path(rec.netns) if rec.netns else None
        return await self.dialer.connect(path, "127.0.0.1", port)
