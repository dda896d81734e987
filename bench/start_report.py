"""The tables `bench/start.py` prints (Markdown, ready for docs/performance.md), from its timings,
memory readings and floors. Pure: no I/O besides returning lines.

Every time is seconds since `kubelite start` was spawned; a cell is the median over the runs with
the range beside it. Ratios divide the median total by each floor, so a slower or busier machine,
which slows the floors as well, still gives comparable numbers.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field

from bench.start_probes import Floors, Proc

PUBLISHED = (("k3d", 19.9), ("kind", 33.0), ("minikube", 50.8))  # totals on a laptop, minikube's site
K3S_IDLE_MB = 500  # an empty single-node k3s, as commonly quoted
GOALS = {1: 3.0, 3: 5.0}
PHASES = (("command", "command returned"), ("api", "API server answering (/readyz)"),
          ("app", "app running (HTTP 200 via NodePort)"), ("dns", "DNS answering in a pod (total)"))


@dataclass(frozen=True)
class Idle:
    procs: list[Proc]  # the cluster's processes at the end of the idle time
    cpu_percent: float  # their CPU use during it, in % of one core


@dataclass
class Timing:
    command: float = 0.0
    api: float = 0.0
    app: float = 0.0
    dns: float = 0.0
    steps: dict[str, float] = field(default_factory=dict)  # `kubelite start`'s progress lines, when printed
    cpu: float = 0.0  # CPU seconds of the start command and the daemons until DNS answered
    delete: float = 0.0  # `kubelite delete` afterwards (with the app's pod), not part of the total


def cell(samples: list[float]) -> str:
    if not samples:
        return "—"
    if len(samples) == 1:
        return f"{samples[0]:.2f}"
    return f"{statistics.median(samples):.2f} ({min(samples):.2f}–{max(samples):.2f})"


def _header(counts: list[int], first: str) -> list[str]:
    names = [f"{n} node{'s' if n > 1 else ''}" for n in counts]
    return [f"| {first} | " + " | ".join(names) + " |", "|---|" + "---|" * len(counts)]


def phase_table(results: dict[int, list[Timing]]) -> list[str]:
    counts = sorted(results)
    lines = _header(counts, "phase (s since `kubelite start` began; median (min–max))")
    for key, label in PHASES:
        lines.append(f"| {label} | " + " | ".join(cell([getattr(t, key) for t in results[n]]) for n in counts) + " |")
    lines.append("| goal for the total | " + " | ".join(f"< {GOALS[n]:.0f}" if n in GOALS else "—"
                                                       for n in counts) + " |")
    lines.append("| CPU s used (start command + daemons) | "
                 + " | ".join(cell([t.cpu for t in results[n]]) for n in counts) + " |")
    lines.append("| `kubelite delete` afterwards (s, not in the total) | "
                 + " | ".join(cell([t.delete for t in results[n]]) for n in counts) + " |")
    published = ", ".join(f"{name} {total} s" for name, total in PUBLISHED)
    return [*lines, "", f"Published totals on a laptop (minikube's time-to-k8s, not measured here): {published}."]


def steps_table(results: dict[int, list[Timing]]) -> list[str]:
    """When each progress line of `kubelite start` was printed (median s since spawn), in the order
    of the largest cluster's run (its steps include the smaller clusters' ones)."""
    counts = sorted(results)

    def when(key: str) -> float:
        for n in reversed(counts):
            seen = [t.steps[key] for t in results[n] if key in t.steps]
            if seen:
                return statistics.median(seen)
        return 0.0

    keys = sorted({k for n in counts for t in results[n] for k in t.steps}, key=when)
    lines = _header(counts, "`kubelite start` printed (s since spawn)")
    for key in keys:
        cells = [cell([t.steps[key] for t in results[n] if key in t.steps]) for n in counts]
        lines.append(f"| {key} | " + " | ".join(cells) + " |")
    return lines


def ratio_lines(results: dict[int, list[Timing]], floors: Floors) -> list[str]:
    lines = [f"Floors in this run: `runc run` of busybox {floors.runc_run * 1000:.0f} ms, `python -c pass` "
             f"{floors.python * 1000:.0f} ms, `python -c \"import kubelite.cli.main\"` {floors.python_cli * 1000:.0f} ms.",
             ""]
    for n in sorted(results):
        total = statistics.median([t.dns for t in results[n]])
        command = statistics.median([t.command for t in results[n]])
        lines.append(f"- {n} node(s): total = {total / floors.runc_run:.0f}× `runc run`, "
                     f"{total / floors.python:.0f}× a bare Python start, {total / floors.python_cli:.0f}× a Python "
                     f"start with the CLI imported; the command alone = {command / floors.python_cli:.0f}× the "
                     f"latter")
    return lines


def memory_table(memory: dict[int, Idle], *, idle: float) -> list[str]:
    counts = sorted(memory)
    lines = _header(counts, f"memory after {idle:.0f} s idle, no workloads: RSS / PSS (MiB)")

    def row(label: str, pick: str) -> str:
        cells = []
        for n in counts:
            chosen = [p for p in memory[n].procs if _kind(p) == pick] if pick else memory[n].procs
            rss, pss = sum(p.rss_kib for p in chosen) / 1024, sum(p.pss_kib for p in chosen) / 1024
            cells.append(f"{rss:.0f} / {pss:.0f} ({len(chosen)} proc)" if chosen else "—")
        return f"| {label} | " + " | ".join(cells) + " |"

    lines += [row("server", "server"), row("node agents", "agent"), row("conmon, runc, others", "other"),
              row("**whole cluster**", ""),
              "| CPU while idle (% of one core) | " + " | ".join(f"{memory[n].cpu_percent:.1f}" for n in counts) + " |"]
    return [*lines, "", f"Reference: an empty single-node k3s is about {K3S_IDLE_MB} MB."]


def _kind(proc: Proc) -> str:
    if proc.role == "server":
        return "server"
    return "agent" if proc.role.startswith("node-") else "other"
