"""What `bench/start.py` reads off the machine, apart from the timed phases: the bare costs a cluster
is built from (the floors), the cluster's memory and CPU by the PIDs its daemons recorded, and what
of a cluster is left on the machine after `kubelite delete`.

Floors, each the median of a few runs in this same process so a noisy machine shows in them too:
one `runc run` of a busybox container to its exit (fresh namespaces of every kind, the rootfs a
directory holding the host's static busybox; runtime recipes §4), `python -c pass` and
`python -c "import kubelite.cli.main"` (every daemon and every `kubelite` command pays it).

Memory: RSS (VmRSS) and PSS (`/proc/<pid>/smaps_rollup`, shared pages split between their users)
of the processes named by `<data>/run/*.pid`, their descendants, and any other process whose command
line names the data directory (conmon daemonizes away from the agent that spawned it).
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from tests.e2e.local_fixtures import Shape, leftovers, route_inside  # noqa: F401 (re-exported: what is left after delete)

NUL = b"\0"


# ----- floors ------------------------------------------------------------------------------------

def seconds(argv: list[str], *, cwd: Path | None = None) -> float:
    """Wall time of running `argv` to its exit, output to /dev/null (runc's stdio must be files,
    not pipes: recipes §4)."""
    began = time.perf_counter()
    subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   check=True, cwd=cwd)
    return time.perf_counter() - began


def runc_bundle(work: Path, *, busybox: Path = Path("/bin/busybox")) -> Path:
    """A bundle running busybox `true` from a read-only rootfs holding only the static busybox,
    with `runc spec`'s defaults otherwise (new namespaces of every kind)."""
    bundle = work / "bundle"
    (bundle / "rootfs" / "bin").mkdir(parents=True)
    shutil.copy2(busybox, bundle / "rootfs" / "bin" / "busybox")
    subprocess.run(["runc", "spec", "--bundle", str(bundle)], check=True)
    spec = json.loads((bundle / "config.json").read_text())
    spec["root"] = {"path": "rootfs", "readonly": True}
    spec["process"].update(terminal=False, args=["/bin/busybox", "true"])
    (bundle / "config.json").write_text(json.dumps(spec))
    return bundle


@dataclass(frozen=True)
class Floors:
    runc_run: float  # one `runc run` of busybox `true`, to runc's exit
    python: float  # `python -c pass`
    python_cli: float  # `python -c "import kubelite.cli.main"`


def measure_floors(work: Path, repo: Path, *, repeat: int = 9) -> Floors:
    """Medians of (`runc run` of busybox `true` to runc's exit: created, started, exited, deleted;
    `python -c pass`; `python -c "import kubelite.cli.main"`), taken in turns so that the same
    background load falls on all three."""
    bundle = runc_bundle(work)
    runc = ["runc", "--root", str(work / "runc-root"), "run", "--bundle", str(bundle)]
    samples: tuple[list[float], list[float], list[float]] = ([], [], [])
    for i in range(repeat):
        samples[0].append(seconds([*runc, f"klb-floor-{i}"]))
        time.sleep(0.2)  # the kernel tears the container's network namespace down after runc exits
        samples[1].append(seconds([sys.executable, "-c", "pass"]))
        samples[2].append(seconds([sys.executable, "-c", "import kubelite.cli.main"], cwd=repo))
    runc_s, python_s, cli_s = (statistics.median(s) for s in samples)
    return Floors(runc_run=runc_s, python=python_s, python_cli=cli_s)


# ----- processes of a cluster --------------------------------------------------------------------

@dataclass(frozen=True)
class Proc:
    pid: int
    role: str  # the PID file's name (server, node-<name>), or the command of a helper process
    rss_kib: int
    pss_kib: int


def _status_kib(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return 0


def _pss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        if line.startswith("Pss:"):
            return int(line.split()[1])
    return 0


def _parents() -> dict[int, int]:
    parents = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            parents[int(entry)] = int(stat.rsplit(")", 1)[1].split()[1])
    return parents


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def daemon_pids(data_dir: Path) -> dict[int, str]:
    """PID -> role from `<data>/run/*.pid` (the daemons `kubelite start` recorded)."""
    pids = {}
    for pid_file in sorted((data_dir / "run").glob("*.pid")):
        try:
            pids[int(pid_file.read_text().strip())] = pid_file.stem
        except (OSError, ValueError):
            continue
    return pids


def cluster_processes(data_dir: Path) -> list[Proc]:
    """The daemons, their descendants, and other processes naming the data dir (conmon)."""
    roles = {pid: role for pid, role in daemon_pids(data_dir).items() if Path(f"/proc/{pid}").exists()}
    parents = _parents()
    grown = True
    while grown:  # descendants of the daemons, to any depth
        extra = {pid: "child" for pid, ppid in parents.items() if ppid in roles and pid not in roles}
        grown = bool(extra)
        roles.update(extra)
    marker = str(data_dir).encode()
    for pid in parents:
        if pid not in roles and pid != os.getpid() and marker in _cmdline(pid):
            roles[pid] = "helper"
    procs = []
    for pid, role in sorted(roles.items()):
        if role in ("child", "helper"):
            role = Path(_cmdline(pid).split(NUL)[0].decode(errors="replace")).name or role
        try:
            procs.append(Proc(pid, role, _status_kib(pid, "VmRSS"), _pss_kib(pid)))
        except OSError:
            continue  # gone meanwhile
    return procs


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU seconds the processes have used so far, with their waited-for children."""
    tick, total = os.sysconf("SC_CLK_TCK"), 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += sum(int(fields[i]) for i in (11, 12, 13, 14))
    return total / tick
