"""Launching one container instance into a ready sandbox, and cleaning up after it.

launch: image (from the ImageStoreAPI) → a new instance record (id, restart count, log path) saved
in the pod's record → overlay rootfs → OCI spec (`spec.py`, pure, from the pod's sandbox and the
kubelet's env and mounts) → config.json → conmon + runc create → runc start. A spec that cannot be
built (SpecError, CreateContainerConfigError upstream) undoes the instance and raises, leaving the
previous instance as the current one; a process runc cannot start (no such executable, ...) is
recorded as exited with reason StartError and exit code 128, as containerd reports it.

clean: once an instance has exited, its runc state, rootfs mount and bundle go; its log stays
(the current and the previous instance's logs are kept, for `kubectl logs --previous`).
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from kubelite.agent.clock import now_rfc3339
from kubelite.agent.runtime.interface import Mount
from kubelite.agent.runtime.runc import cgroups, netns, rootfs, spec, system
from kubelite.agent.runtime.runc.container import ContainerError, Runc
from kubelite.agent.runtime.runc.sandbox import Sandboxes
from kubelite.agent.runtime.runc.state import ContainerRecord, Layout, SandboxRecord
from kubelite.agent.runtime.runc.status import image_id
from kubelite.images.api import ImageRecord, ImageStoreAPI

log = logging.getLogger(__name__)
Obj = dict[str, Any]
START_ERROR_CODE = 128


class Launcher:
    def __init__(self, layout: Layout, runc: Runc, sandboxes: Sandboxes, images: ImageStoreAPI, *,
                 cgroup_parent: str, pids_limit: int | None) -> None:
        self.layout, self.runc, self.sandboxes, self.images = layout, runc, sandboxes, images
        self.cgroup_parent, self.pids_limit = cgroup_parent, pids_limit
        self._caps, self._min_oom = system.available_caps(), system.min_oom_score_adj()
        self._memory = system.memory_capacity()

    async def launch(self, rec: SandboxRecord, container: Obj, *, init: bool, env: Sequence[tuple[str, str]] | None,
                     mounts: Sequence[Mount], previous: ContainerRecord | None) -> ContainerRecord:
        """The new current instance of `container`: running, or exited with StartError."""
        image = self.images.get(str(container.get("image") or ""))
        crec = self._new_record(rec, container, image, init=init, previous=previous)
        table = rec.init_containers if init else rec.containers
        table[crec.name] = crec
        rec.cgroup_dirs = sorted(set(rec.cgroup_dirs) | set(cgroups.pod_dirs(self.cgroup_parent, rec.uid)))
        self.layout.save(rec)
        bundle = self.layout.container_dir(crec.id)
        try:
            root = rootfs.mount_rootfs(image.layer_dirs, bundle)
            config = spec.build_spec(self.context(rec), self._inputs(crec, container, image, root, env, mounts))
        except (spec.SpecError, rootfs.RootfsError):
            await self.clean(crec)
            if previous is not None:
                table[crec.name] = previous
            else:
                table.pop(crec.name, None)
            self.layout.save(rec)
            raise
        (bundle / "config.json").write_text(json.dumps(config))
        self._rotate_logs(crec, previous)
        try:
            await self.runc.create(crec.id, log_path=Path(crec.log_path), tty=crec.tty, stdin=crec.stdin,
                                   stdin_once=bool(container.get("stdinOnce")))
            await self.runc.start(crec.id)
        except ContainerError as exc:
            log.info("container %s of pod %s/%s failed to start: %s", crec.name, rec.namespace, rec.name, exc)
            crec.state, crec.exit_code, crec.reason, crec.message = "exited", START_ERROR_CODE, "StartError", str(exc)
            crec.finished_at = now_rfc3339()
            await self.clean(crec)
        else:
            crec.state, crec.started_at = "running", now_rfc3339()
        self.layout.save(rec)
        return crec

    async def clean(self, crec: ContainerRecord) -> None:
        """After the exit: runc's state, the rootfs mount and the bundle go (the log stays)."""
        if crec.cleaned:
            return
        try:
            await self.runc.delete(crec.id)
        except ContainerError:
            await self.runc.delete(crec.id, force=True)
        # a container deleted before it ran (StartError) still has its conmon, which writes the
        # exit files as it goes: let it finish first, or it would write them after we cleaned up
        await self.runc.wait_conmon(crec.id, timeout=5.0)
        rootfs.remove_tree(self.layout.container_dir(crec.id))
        (self.layout.exits / crec.id).unlink(missing_ok=True)
        crec.cleaned = True

    def _new_record(self, rec: SandboxRecord, container: Obj, image: ImageRecord, *, init: bool,
                    previous: ContainerRecord | None) -> ContainerRecord:
        name = str(container["name"])
        restart = previous.restart_count + 1 if previous is not None else 0
        return ContainerRecord(
            name=name, id=uuid.uuid4().hex + uuid.uuid4().hex, init=init, image=image.reference,
            image_id=image_id(image), restart_count=restart,
            log_path=str(Path(rec.log_dir) / name / f"{restart}.log"),
            stop_signal=spec.stop_signal(container, image.config.get("config") or {}),
            tty=bool(container.get("tty")), stdin=bool(container.get("stdin")),
            previous_log=previous.log_path if previous else "")

    def _rotate_logs(self, crec: ContainerRecord, previous: ContainerRecord | None) -> None:
        Path(crec.log_path).parent.mkdir(parents=True, exist_ok=True)
        if previous is not None and previous.previous_log:
            Path(previous.previous_log).unlink(missing_ok=True)

    def context(self, rec: SandboxRecord) -> spec.PodContext:
        paths = self.sandboxes.paths(rec.uid)
        return spec.PodContext(
            pod=rec.pod, hostname=rec.hostname,
            netns_path=str(netns.netns_path(rec.netns)) if rec.netns else None,
            ipc_path=str(paths["ipc"]) if rec.ipc_ns else None, uts_path=str(paths["uts"]) if rec.uts_ns else None,
            hosts_path=str(paths["hosts"]), hostname_path=str(paths["hostname"]),
            resolv_path=str(paths["resolv.conf"]), shm_path=str(paths["shm"]) if rec.shm else None,
            cgroup_parent=f"{self.cgroup_parent}/{rec.uid}")

    def _inputs(self, crec: ContainerRecord, container: Obj, image: ImageRecord, root: Path,
                env: Sequence[tuple[str, str]] | None, mounts: Sequence[Mount]) -> spec.ContainerInputs:
        if env is None:
            env = [(str(e["name"]), str(e.get("value") or "")) for e in container.get("env") or []
                   if "valueFrom" not in e]
        return spec.ContainerInputs(
            container=container, container_id=crec.id, image_config=image.config.get("config") or {},
            rootfs=str(root), env=list(env), mounts=list(mounts), passwd=rootfs.read_text(root, "etc/passwd"),
            group=rootfs.read_text(root, "etc/group"), available_caps=self._caps, pids_limit=self.pids_limit,
            memory_capacity=self._memory, min_oom_score_adj=self._min_oom)
