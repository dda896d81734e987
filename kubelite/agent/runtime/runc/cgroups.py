"""Where a pod's cgroups are, and removing them.

Containers get the relative cgroupsPath `<parent>/<pod uid>/<container id>`: runc (cgroupfs
driver) puts it below the cgroup runc itself runs in, in every hierarchy (on cgroup v1 hybrid: each
controller, name=systemd and the unified tree). runc removes only the leaf when a container is
deleted, so the pod's directory (and the parent, once empty) is removed here, bottom-up, in every
hierarchy. The directories are computed from the agent's own cgroups when a container is created
and stored in the pod's record, because a restarted agent may run in different cgroups.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path


def _mounts() -> list[tuple[Path, str, frozenset[str]]]:
    """(mount point, root within the hierarchy, controllers) of each cgroup mount; cgroup2 has
    the empty controller set."""
    found: list[tuple[Path, str, frozenset[str]]] = []
    try:
        with open("/proc/self/mountinfo") as f:
            for line in f:
                fields = line.split()
                sep = fields.index("-")
                fstype, super_opts = fields[sep + 1], fields[sep + 3]
                if fstype == "cgroup2":
                    found.append((Path(fields[4]), fields[3], frozenset()))
                elif fstype == "cgroup":
                    ctrls = frozenset(o for o in super_opts.split(",") if o not in ("rw", "ro")
                                      and not o.startswith(("relatime", "release_agent", "clone_children")))
                    found.append((Path(fields[4]), fields[3], ctrls))
    except (OSError, ValueError, IndexError):
        return []
    return found


def _own_paths() -> dict[frozenset[str], str]:
    paths: dict[frozenset[str], str] = {}
    try:
        with open("/proc/self/cgroup") as f:
            for line in f:
                _, ctrls, path = line.rstrip("\n").split(":", 2)
                paths[frozenset(c for c in ctrls.split(",") if c)] = path
    except (OSError, ValueError):
        pass
    return paths


def own_dirs() -> list[Path]:
    """The directory of the agent's own cgroup in each mounted hierarchy."""
    own = _own_paths()
    dirs = []
    for point, root, ctrls in _mounts():
        path = own.get(ctrls)
        if path is None:
            continue
        relative = os.path.relpath(path, root) if root != "/" else path.lstrip("/")
        dirs.append(point / relative if relative not in ("", ".") else point)
    return dirs


def pod_dirs(parent: str, uid: str) -> list[str]:
    return [str(base / parent / uid) for base in own_dirs()]


def oom_killed(dirs: list[str], container_id: str) -> bool:
    """Whether the memory cgroup of the container (still there until `runc delete`) OOM-killed a
    process: its memory.oom_control counts `oom_kill`s (cgroup v1)."""
    points = [str(point) for point, _, ctrls in _mounts() if "memory" in ctrls]
    for d in dirs:
        if any(d.startswith(p + "/") for p in points):
            try:
                text = (Path(d) / container_id / "memory.oom_control").read_text()
            except OSError:
                return False
            counts = dict(line.split() for line in text.splitlines() if len(line.split()) == 2)
            return int(counts.get("oom_kill", "0")) > 0
    return False


def remove(dirs: list[str]) -> list[str]:
    """rmdir each pod directory bottom-up, then its parent if empty; returns what could not go."""
    left = []
    for d in dirs:
        path = Path(d)
        if not path.exists():
            continue
        for sub, _, _ in os.walk(path, topdown=False):
            try:
                os.rmdir(sub)
            except OSError:
                left.append(sub)
        with contextlib.suppress(OSError):  # the shared parent ("kubelite"): only once no pod uses it
            path.parent.rmdir()
    return left
