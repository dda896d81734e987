"""Restart policy and back-off, as upstream's kubelet applies them (pure; the clock is injected).

- `should_restart`: whether an exited container is started again: restartPolicy Always always,
  OnFailure after a non-zero exit, Never never. Sidecars (init containers with restartPolicy
  Always) always restart; a regular init container that failed restarts unless the pod's policy
  is Never (then the pod fails).
- `Backoff`: upstream's flowcontrol.Backoff keyed per container (`<pod uid>/<name>`): the first
  restart is immediate and records a 10 s back-off; each exit inside the back-off window waits it
  out (CrashLoopBackOff), the next restart doubles it up to 5 min. An entry expires (back to
  10 s) once twice the cap (10 min) passed since its last update, i.e. after a container ran
  10 min. The same class with the same numbers backs off image pulls (key `<uid>_<image>`).
- Times are monotonic seconds. `scale` shrinks every real wait (tests run CrashLoopBackOff in
  seconds) while the durations in messages stay upstream's nominal ones ("back-off 20s").
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

Obj = dict[str, Any]
INITIAL_BACKOFF = 10.0
MAX_BACKOFF = 300.0


def restart_policy(pod: Obj) -> str:
    return str((pod.get("spec") or {}).get("restartPolicy") or "Always")


def is_sidecar(container: Obj) -> bool:
    return container.get("restartPolicy") == "Always"


def should_restart(policy: str, exit_code: int | None) -> bool:
    """Whether a regular container that exited with `exit_code` is started again."""
    if policy == "Always":
        return True
    if policy == "OnFailure":
        return exit_code != 0
    return False


def go_duration(seconds: float) -> str:
    """Go's time.Duration.String for whole seconds: 10s, 1m20s, 5m0s, 1h0m0s."""
    total = int(round(seconds))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes}m{secs}s"
    if minutes:
        return f"{minutes}m{secs}s"
    return f"{secs}s"


def pod_ref(pod: Obj) -> str:
    """upstream's format.Pod: `name_namespace(uid)`."""
    meta = pod.get("metadata") or {}
    return f"{meta.get('name')}_{meta.get('namespace')}({meta.get('uid')})"


def crashloop_message(backoff: float, container: str, pod: Obj) -> str:
    return f"back-off {go_duration(backoff)} restarting failed container={container} pod={pod_ref(pod)}"


def backoff_event_message(container: str, pod: Obj) -> str:
    return f"Back-off restarting failed container {container} in pod {pod_ref(pod)}"


@dataclass
class _Entry:
    backoff: float  # nominal seconds
    last_update: float  # monotonic


class Backoff:
    """Per-key exponential back-off (upstream flowcontrol.Backoff, without jitter)."""

    def __init__(self, initial: float = INITIAL_BACKOFF, cap: float = MAX_BACKOFF, *, scale: float = 1.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.initial, self.cap, self.scale, self.clock = initial, cap, scale, clock
        self._entries: dict[str, _Entry] = {}

    def _expired(self, entry: _Entry, at: float) -> bool:
        return at - entry.last_update > 2 * self.cap * self.scale

    def get(self, key: str) -> float:
        """The nominal back-off of `key` (0 when it has none)."""
        entry = self._entries.get(key)
        return entry.backoff if entry else 0.0

    def next(self, key: str, event_time: float) -> None:
        """Record a restart at `event_time`: start at the initial back-off, or double it."""
        entry = self._entries.get(key)
        if entry is None or self._expired(entry, event_time):
            self._entries[key] = _Entry(self.initial, event_time)
        else:
            entry.backoff, entry.last_update = min(entry.backoff * 2, self.cap), event_time

    def remaining(self, key: str, event_time: float) -> float:
        """Real seconds until a container that exited at `event_time` may restart (0: now)."""
        entry = self._entries.get(key)
        now = self.clock()
        if entry is None or self._expired(entry, now):
            return 0.0
        return max(0.0, event_time + entry.backoff * self.scale - now)

    def in_backoff_since(self, key: str, event_time: float) -> bool:
        return self.remaining(key, event_time) > 0

    def in_backoff_since_update(self, key: str) -> bool:
        """Image pulls: whether the back-off since the last failed pull still runs."""
        entry = self._entries.get(key)
        return entry is not None and self.remaining(key, entry.last_update) > 0

    def remaining_since_update(self, key: str) -> float:
        entry = self._entries.get(key)
        return self.remaining(key, entry.last_update) if entry else 0.0

    def forget(self, prefix: str) -> None:
        """Drop the entries of a pod (keys starting with its uid)."""
        for key in [k for k in self._entries if k.startswith(prefix)]:
            del self._entries[key]

    def gc(self) -> None:
        now = self.clock()
        for key in [k for k, e in self._entries.items() if self._expired(e, now)]:
            del self._entries[key]
