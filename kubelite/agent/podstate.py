"""What the kubelet remembers about one pod between syncs (in memory; rebuilt from the API status
and the runtime after an agent restart).

- `waiting`: why a container is not running (upstream's reasonCache): CrashLoopBackOff,
  ErrImagePull, CreateContainerConfigError, ...; cleared when it starts;
- `last_terminated`: how the previous instance ended, reported as `lastState` (the runtime keeps
  only the current instance);
- `started_at` / `exited_at`: monotonic times the kubelet saw each container instance start and
  exit (back-off and initialDelaySeconds count from them: the runtime's RFC 3339 times have
  one-second resolution, too coarse for scaled tests). An instance found already running or
  exited (after a restart) gets the time its RFC 3339 timestamp says.
`adopt` fills the state of a pod the runtime already runs from the pod's API status: an instance
the API reported under the same container ID keeps its lastState, ready and started.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

from kubelite.agent.clock import parse_time
from kubelite.agent.runtime.interface import ContainerState, PodRuntimeStatus

Obj = dict[str, Any]


@dataclass
class PodState:
    uid: str
    waiting: dict[str, tuple[str, str]] = field(default_factory=dict)
    last_terminated: dict[str, Obj] = field(default_factory=dict)
    started_at: dict[str, float] = field(default_factory=dict)  # container id -> monotonic
    exited_at: dict[str, float] = field(default_factory=dict)
    starting: set[str] = field(default_factory=set)  # init containers whose start (run to completion) is under way
    tasks: set[asyncio.Task[None]] = field(default_factory=set)
    volume_paths: dict[str, str] | None = None
    volumes_refresh_at: float = 0.0
    noted: set[tuple[str, str]] = field(default_factory=set)  # (reason, message) events already recorded
    backoff_noted: set[str] = field(default_factory=set)  # container ids whose BackOff event went out

    def note_once(self, reason: str, message: str) -> bool:
        """True the first time this event is seen for the pod."""
        if (reason, message) in self.noted:
            return False
        self.noted.add((reason, message))
        return True


def monotonic_of(rfc3339: str, *, now_mono: float, now_wall: float) -> float:
    """The monotonic time of a wall-clock timestamp (now, when it is absent)."""
    wall = parse_time(rfc3339)
    return now_mono if wall is None else now_mono - max(0.0, now_wall - wall)


def all_states(rt: PodRuntimeStatus) -> list[tuple[ContainerState, bool]]:
    return [*((s, True) for s in rt.init_containers.values()), *((s, False) for s in rt.containers.values())]


def observe(st: PodState, rt: PodRuntimeStatus | None, *, adopting: bool = False,
            now_mono: float | None = None, now_wall: float | None = None) -> None:
    """Note the start and exit times of instances not seen before."""
    if rt is None:
        return
    mono = time.monotonic() if now_mono is None else now_mono
    wall = time.time() if now_wall is None else now_wall
    current = {state.id for state, _ in all_states(rt)}
    for times in (st.started_at, st.exited_at):
        for gone in [cid for cid in times if cid not in current]:
            del times[gone]
    for state, _ in all_states(rt):
        if state.id not in st.started_at:
            st.started_at[state.id] = monotonic_of(state.started_at, now_mono=mono, now_wall=wall)
        if state.state == "exited" and state.id not in st.exited_at:
            st.exited_at[state.id] = monotonic_of(state.finished_at, now_mono=mono, now_wall=wall) \
                if adopting else mono


def api_statuses(pod: Obj) -> dict[str, Obj]:
    status = pod.get("status") or {}
    return {str(s.get("name")): s for key in ("initContainerStatuses", "containerStatuses")
            for s in status.get(key) or []}


def adopt(st: PodState, pod: Obj, rt: PodRuntimeStatus, *, runtime: str) -> dict[str, tuple[str, bool, bool]]:
    """Take over a pod the runtime already runs: lastState from the API status of the same
    instances; returns name -> (container id, ready, started) as the API reported them."""
    reported = api_statuses(pod)
    seeds = {}
    for state, _ in all_states(rt):
        api = reported.get(state.name)
        if api is None or api.get("containerID") != f"{runtime}://{state.id}":
            continue
        last = (api.get("lastState") or {}).get("terminated")
        if last:
            st.last_terminated[state.name] = dict(last)
        seeds[state.name] = (state.id, bool(api.get("ready")), bool(api.get("started")))
    observe(st, rt, adopting=True)
    return seeds
