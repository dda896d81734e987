"""Rebuilding the runtime's table after an agent restart, from disk only (no process is signalled,
so running containers keep running).

For every sandbox record, each container the record last saw created or running is settled by
what its bundle says now:
- an exit file (conmon wrote it, maybe while the agent was down) → exited with that code, at the
  file's mtime, OOMKilled if conmon also wrote `oom` (or the memory cgroup counted an OOM kill);
- conmon alive (its pid file, and the pid's command line names the container) → running;
- conmon gone but the container's process alive → running (its exit is then noticed by polling);
- neither → exited with an unknown code (255, reason Unknown, as containerd reports a lost exit).
Exited containers whose runc state and rootfs were not cleaned up yet are returned too, so the
runtime finishes that. Sandboxes whose creation never completed stay in the table, not ready: the
kubelet's next create_sandbox or remove_sandbox tears them down.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

from kubelite.agent.runtime.runc import cgroups
from kubelite.agent.runtime.runc.container import ExitInfo, Runc
from kubelite.agent.runtime.runc.state import ContainerRecord, Layout, SandboxRecord

UNKNOWN_EXIT = 255
OOM_EXIT = 137  # 128 + SIGKILL


@dataclass
class Recovered:
    sandboxes: dict[str, SandboxRecord] = field(default_factory=dict)
    running: list[tuple[str, str]] = field(default_factory=list)  # (pod uid, container name)
    to_clean: list[tuple[str, str]] = field(default_factory=list)


def rfc3339(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def exit_reason(info: ExitInfo) -> str:
    if info.oom:
        return "OOMKilled"
    return "Completed" if info.code == 0 else "Error"


def apply_exit(c: ContainerRecord, info: ExitInfo, *, cgroup_dirs: list[str]) -> None:
    """Record the exit. conmon's `oom` file can lose the race with the exit it caused, so a SIGKILL
    exit is also checked against the memory cgroup's OOM-kill count (there until `runc delete`)."""
    if not info.oom and info.code == OOM_EXIT and cgroups.oom_killed(cgroup_dirs, c.id):
        info = replace(info, oom=True)
    c.state, c.exit_code, c.reason, c.finished_at = "exited", info.code, exit_reason(info), rfc3339(info.at)


def settle(c: ContainerRecord, runc: Runc, *, now: float, cgroup_dirs: list[str]) -> str:
    """The container's state now: "running", or "exited" (applied to the record)."""
    if c.state == "exited":
        return "exited"
    info = runc.exit_info(c.id)
    if info is not None:
        apply_exit(c, info, cgroup_dirs=cgroup_dirs)
        return "exited"
    if c.state == "running" and (runc.conmon_pid(c.id) is not None or runc.container_pid(c.id) is not None):
        return "running"
    c.state, c.exit_code, c.reason, c.finished_at = "exited", UNKNOWN_EXIT, "Unknown", rfc3339(now)
    return "exited"


def recover(layout: Layout, runc: Runc, *, now: float) -> Recovered:
    found = Recovered()
    for rec in layout.load_all():
        found.sandboxes[rec.uid] = rec
        changed = False
        for c in rec.all_containers():
            before = (c.state, c.exit_code)
            if settle(c, runc, now=now, cgroup_dirs=rec.cgroup_dirs) == "running":
                found.running.append((rec.uid, c.name))
            elif not c.cleaned:
                found.to_clean.append((rec.uid, c.name))
            changed |= before != (c.state, c.exit_code)
        if changed:
            layout.save(rec)
    return found
