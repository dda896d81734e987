"""The runtime's on-disk state: where everything lives under its root, and the per-pod record that
lets a restarted agent carry on (`recover.py`).

Layout under `root`:
  sandboxes/<pod uid>.json    SandboxRecord (written before each step that creates something, so a
                              crash leaves a record that names what may need cleaning up)
  pods/<pod uid>/             hosts, hostname, resolv.conf, ipc/uts namespace files, shm (tmpfs)
  containers/<container id>/  the bundle: config.json, rootfs (overlay mount), upper, work,
                              conmon.pid, pidfile, exit and oom (written by conmon), attach socket,
                              ctl fifo
  exits/<container id>        exit codes (conmon's --exit-dir)
  runc/                       runc's --root state directory
  cni/                        host-local's dataDir (ipam/)
  exec/                       pid files of running exec sessions
  logs/<ns>_<name>_<uid>/<container>/<restart>.log   CRI-format logs (unless configured elsewhere)

Records are JSON, replaced atomically (rename) on every change; no fsync: they must survive an
agent crash, not a power loss (which also loses every container).
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

Obj = dict[str, Any]


@dataclass
class ContainerRecord:
    name: str
    id: str
    init: bool
    image: str
    image_id: str
    restart_count: int = 0
    state: str = "created"  # created | running | exited
    started_at: str = ""
    finished_at: str = ""
    exit_code: int | None = None
    reason: str = ""
    message: str = ""
    log_path: str = ""
    stop_signal: int = 15
    tty: bool = False
    stdin: bool = False
    cleaned: bool = False  # runc state deleted and rootfs unmounted after the exit
    previous_log: str = ""


@dataclass
class SandboxRecord:
    uid: str
    name: str
    namespace: str
    id: str
    created_at: str
    host_network: bool = False
    ready: bool = False
    netns: str = ""  # the named network namespace (ip netns), "" on the host network
    ips: list[str] = field(default_factory=list)
    cni_result: Obj | None = None
    cni_conflist: Obj | None = None  # the configuration ADD ran with, for DEL and CHECK
    cni_runtime_config: Obj = field(default_factory=dict)  # portMappings given to ADD (DEL needs them too)
    hostname: str = ""
    pod: Obj = field(default_factory=dict)  # metadata and spec as create_sandbox saw them
    ipc_ns: bool = False  # pods/<uid>/ipc is a namespace bind mount
    uts_ns: bool = False
    shm: bool = False  # pods/<uid>/shm is a tmpfs mount
    log_dir: str = ""
    cgroup_dirs: list[str] = field(default_factory=list)  # per-hierarchy pod cgroup directories
    containers: dict[str, ContainerRecord] = field(default_factory=dict)
    init_containers: dict[str, ContainerRecord] = field(default_factory=dict)

    def all_containers(self) -> list[ContainerRecord]:
        return list(self.init_containers.values()) + list(self.containers.values())

    def find(self, name: str) -> ContainerRecord | None:
        return self.containers.get(name) or self.init_containers.get(name)


def record_from_json(data: Obj) -> SandboxRecord:
    def containers(key: str) -> dict[str, ContainerRecord]:
        return {name: ContainerRecord(**c) for name, c in (data.get(key) or {}).items()}

    fields = {k: v for k, v in data.items() if k not in ("containers", "init_containers")}
    return SandboxRecord(**fields, containers=containers("containers"), init_containers=containers("init_containers"))


@dataclass(frozen=True)
class Layout:
    root: Path
    log_root: Path

    @classmethod
    def at(cls, root: Path, log_root: Path | None = None) -> Layout:
        return cls(root, log_root or root / "logs")

    def ensure(self) -> None:
        for path in (self.sandboxes, self.pods, self.containers, self.exits, self.runc_root, self.cni, self.execs,
                     self.log_root):
            path.mkdir(parents=True, exist_ok=True)

    @property
    def sandboxes(self) -> Path:
        return self.root / "sandboxes"

    @property
    def pods(self) -> Path:
        return self.root / "pods"

    @property
    def containers(self) -> Path:
        return self.root / "containers"

    @property
    def exits(self) -> Path:
        return self.root / "exits"

    @property
    def runc_root(self) -> Path:
        return self.root / "runc"

    @property
    def execs(self) -> Path:
        return self.root / "exec"

    @property
    def cni(self) -> Path:
        return self.root / "cni"

    def pod_dir(self, uid: str) -> Path:
        return self.pods / uid

    def container_dir(self, container_id: str) -> Path:
        return self.containers / container_id

    def record_path(self, uid: str) -> Path:
        return self.sandboxes / f"{uid}.json"

    def save(self, record: SandboxRecord) -> None:
        path = self.record_path(record.uid)
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(json.dumps(asdict(record)))
        os.replace(tmp, path)

    def load_all(self) -> list[SandboxRecord]:
        records = []
        for path in sorted(self.sandboxes.glob("*.json")):
            try:
                records.append(record_from_json(json.loads(path.read_text())))
            except (OSError, ValueError, TypeError):
                continue  # a torn or foreign file: recover.py reports pods it cannot read
        return records

    def forget(self, uid: str) -> None:
        self.record_path(uid).unlink(missing_ok=True)
