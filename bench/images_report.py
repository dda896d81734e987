"""The pure parts of `bench/images.py`: the order runs go in, the builder's summary line, and the
Markdown tables and ratio lines for docs/performance.md. No I/O besides returning lines.

Build samples are seconds per run under a key (`cold`, `warm`, the floors); a cell is the median
with the range beside it. Transfers are one timed push or pull each, keyed by client, registry and
operation; throughput is the image's bytes (MB = 10^6 bytes) over the median seconds. Ratios are
ours/theirs of throughput, so 1.00 is a tie and 0.50 means ours took twice as long.
"""

from __future__ import annotations

import re
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")
CLIENTS = ("kubelite", "skopeo")
REGISTRIES = ("kubelite", "docker-registry")
BUILT = re.compile(r"^built (sha256:[0-9a-f]{64}) in ([0-9.]+)s \((\d+)/(\d+) steps cached\)$", re.MULTILINE)
SLOW = 1.5  # a figure this many times slower than its reference gets profiled and explained


class BenchFailure(Exception):
    """The bench cannot go on; the message says why."""


# ----- order -----------------------------------------------------------------------------------------

def rotations(items: Sequence[T], rounds: int) -> list[list[T]]:
    """`rounds` orders of `items`, round r starting at item r: each item is first, second, ... in
    turn, so a slow spell of the machine does not always land on the same one."""
    if not items:
        return [[] for _ in range(rounds)]
    return [[items[(r + i) % len(items)] for i in range(len(items))] for r in range(rounds)]


# ----- the builder's own figure ------------------------------------------------------------------

@dataclass(frozen=True)
class Built:
    image_id: str
    seconds: float  # the builder's own time, without the command's Python start
    cached: int
    steps: int


def parse_built(output: str) -> Built:
    """The summary `kubelite image build` prints last: `built sha256:... in 0.39s (0/2 steps cached)`."""
    found = BUILT.findall(output)
    if not found:
        raise BenchFailure(f"no 'built ... in ...s (n/m steps cached)' line in the build's output:\n{output[-2000:]}")
    image_id, seconds, cached, steps = found[-1]
    return Built(image_id, float(seconds), int(cached), int(steps))


# ----- build -------------------------------------------------------------------------------------

def spread(samples: Sequence[float], *, scale: float = 1.0, digits: int = 2) -> str:
    """`median (min–max)` of samples times `scale`."""
    if not samples:
        return "—"
    values = [s * scale for s in samples]
    if len(values) == 1:
        return f"{values[0]:.{digits}f}"
    return f"{statistics.median(values):.{digits}f} ({min(values):.{digits}f}–{max(values):.{digits}f})"


BUILD_ROWS = (
    ("cold", "`kubelite image build --no-cache` (the command, wall)"),
    ("cold_builder", "… of which the builder (its own `built in` figure)"),
    ("warm", "`kubelite image build`, every step cached (the command, wall)"),
    ("warm_builder", "… of which the builder"),
    ("runc", "floor: `runc run` of busybox `true` (one RUN's container)"),
    ("tar", "floor: `tar -cf` of the copied file"),
    ("tar_gzip", "floor: `tar -c | gzip -1` of the copied file (a COPY layer's work)"),
    ("python_cli", "floor: `python -c \"import kubelite.cli.main\"`"),
)


def build_table(samples: dict[str, list[float]]) -> list[str]:
    lines = ["| build of FROM busybox / COPY / RUN | ms, median (min–max) |", "|---|---|"]
    for key, label in BUILD_ROWS:
        if key in samples:
            lines.append(f"| {label} | {spread(samples[key], scale=1000, digits=0)} |")
    return lines


def build_ratios(samples: dict[str, list[float]]) -> list[str]:
    """The build figures over what they fundamentally cost, each from this run's floors."""
    m = {key: statistics.median(values) for key, values in samples.items() if values}
    floor = m["runc"] + m["tar_gzip"]
    return [
        f"- cold, builder: {m['cold_builder'] / floor:.1f}× (`runc run` + `tar | gzip -1`), "
        f"{(m['cold_builder'] - floor) * 1000:.0f} ms above it",
        f"- cold, command: {m['cold'] / (floor + m['python_cli']):.1f}× (the same + the CLI's Python start)",
        f"- warm, command: {m['warm'] / m['python_cli']:.1f}× the CLI's Python start "
        f"(the builder's own part: {m['warm_builder'] * 1000:.0f} ms)",
        f"- a fully cached rebuild takes {m['warm'] / m['cold']:.0%} of a cold build's wall time",
    ]


# ----- registry ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Transfer:
    client: str  # one of CLIENTS
    registry: str  # one of REGISTRIES
    op: str  # "push" | "pull"
    seconds: float
    unpack: float = 0.0  # a kubelite pull: the store's unpacking of the layer, part of `seconds`


def pick(transfers: Sequence[Transfer], client: str, registry: str, op: str) -> list[Transfer]:
    return [t for t in transfers if (t.client, t.registry, t.op) == (client, registry, op)]


def mbps(size: int, seconds: float) -> float:
    return size / 1e6 / seconds if seconds > 0 else 0.0


def rate(transfers: Sequence[Transfer], size: int, client: str, registry: str, op: str) -> float:
    """MB/s over the median time of these runs (0 when there are none)."""
    chosen = pick(transfers, client, registry, op)
    return mbps(size, statistics.median(t.seconds for t in chosen)) if chosen else 0.0


def rate_cell(transfers: Sequence[Transfer], size: int, client: str, registry: str, op: str) -> str:
    chosen = pick(transfers, client, registry, op)
    if not chosen:
        return "—"
    rates = [mbps(size, t.seconds) for t in chosen]
    seconds = statistics.median(t.seconds for t in chosen)
    spread_text = f" ({min(rates):.0f}–{max(rates):.0f})" if len(rates) > 1 else ""
    return f"{mbps(size, seconds):.0f}{spread_text}; {seconds:.2f} s"


def registry_table(transfers: Sequence[Transfer], size: int) -> list[str]:
    lines = [f"| client → registry ({size / 1e6:.1f} MB image) | push MB/s, median (min–max); s | "
             "pull MB/s, median (min–max); s |", "|---|---|---|"]
    for client in CLIENTS:
        for registry in REGISTRIES:
            if pick(transfers, client, registry, "push") or pick(transfers, client, registry, "pull"):
                lines.append(f"| {client} → {registry} | {rate_cell(transfers, size, client, registry, 'push')} | "
                             f"{rate_cell(transfers, size, client, registry, 'pull')} |")
    return lines


COMPARISONS = (
    # (what is compared, ours (client, registry), theirs (client, registry))
    ("whole stack: kubelite client + registry vs skopeo + docker-registry", ("kubelite", "kubelite"),
     ("skopeo", "docker-registry")),
    ("our registry vs docker-registry, both driven by skopeo", ("skopeo", "kubelite"), ("skopeo", "docker-registry")),
    ("our client vs skopeo, both against our registry", ("kubelite", "kubelite"), ("skopeo", "kubelite")),
    ("our client vs skopeo, both against docker-registry", ("kubelite", "docker-registry"),
     ("skopeo", "docker-registry")),
)


def registry_ratios(transfers: Sequence[Transfer], size: int) -> list[str]:
    """ours/theirs throughput per comparison, push and pull; flags what is over SLOW times slower."""
    lines = []
    for label, ours, theirs in COMPARISONS:
        parts = []
        for op in ("push", "pull"):
            mine, other = rate(transfers, size, *ours, op), rate(transfers, size, *theirs, op)
            if mine and other:
                ratio = mine / other
                parts.append(f"{op} {ratio:.2f}" + (" (slow)" if ratio < 1 / SLOW else ""))
        if parts:
            lines.append(f"- {label}: " + ", ".join(parts))
    return lines


def unpack_line(transfers: Sequence[Transfer], tar_x: Sequence[float], size: int) -> list[str]:
    """How much of a kubelite pull is the store unpacking the layer, which a pull by skopeo into an
    OCI layout does not do, beside `tar -x` of the same layer, and the rate of the rest."""
    pulls = [t for t in transfers if t.client == "kubelite" and t.op == "pull"]
    if not pulls:
        return []
    unpack = statistics.median(t.unpack for t in pulls)
    total = statistics.median(t.seconds for t in pulls)
    rest = statistics.median(t.seconds - t.unpack for t in pulls)
    line = f"- a kubelite pull includes unpacking the layer into the store: median {unpack:.2f} s of {total:.2f} s"
    if tar_x:
        line += f" (`tar -xf` of the same layer + `sync -f`: {statistics.median(tar_x):.2f} s)"
    return [line + f"; without it a kubelite pull moves {mbps(size, rest):.0f} MB/s ({rest:.2f} s)"]
