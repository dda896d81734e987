"""Restart policy and upstream's back-off sequence (pure, fake clock)."""

from __future__ import annotations

import pytest

from kubelite.agent import restarts
from kubelite.agent.restarts import Backoff


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize(("policy", "code", "restart"), [
    ("Always", 0, True), ("Always", 1, True), ("OnFailure", 0, False), ("OnFailure", 2, True),
    ("Never", 0, False), ("Never", 1, False),
])
def test_should_restart(policy: str, code: int, restart: bool) -> None:
    assert restarts.should_restart(policy, code) is restart


@pytest.mark.parametrize(("seconds", "text"), [(10, "10s"), (80, "1m20s"), (160, "2m40s"), (300, "5m0s"),
                                               (3600, "1h0m0s")])
def test_go_durations(seconds: float, text: str) -> None:
    assert restarts.go_duration(seconds) == text


def test_crashloop_backoff_doubles_to_five_minutes() -> None:
    """Each exit: the first restart is immediate, then 10 s, 20 s, ... capped at 300 s."""
    clock = Clock()
    backoff = Backoff(clock=clock)
    waits = []
    for _ in range(8):
        exited = clock.now
        remaining = backoff.remaining("u/app", exited)
        waits.append(remaining)
        clock.now += remaining
        backoff.next("u/app", exited)
        clock.now += 1  # runs for a second, then crashes again
    assert waits == [0, 10, 20, 40, 80, 160, 300, 300]
    assert restarts.crashloop_message(backoff.get("u/app"), "app", {"metadata": {
        "name": "p", "namespace": "ns", "uid": "u"}}) == "back-off 5m0s restarting failed container=app pod=p_ns(u)"


def test_backoff_resets_after_ten_minutes_without_a_restart() -> None:
    clock = Clock()
    backoff = Backoff(clock=clock)
    for _ in range(4):
        backoff.next("k", clock.now)
        clock.now += 1
    assert backoff.get("k") == 80
    clock.now += 601  # ran 10 minutes
    assert backoff.remaining("k", clock.now) == 0
    backoff.next("k", clock.now)
    assert backoff.get("k") == 10


def test_scale_shrinks_real_waits_but_not_nominal_ones() -> None:
    clock = Clock()
    backoff = Backoff(clock=clock, scale=0.01)
    backoff.next("k", clock.now)
    backoff.next("k", clock.now)
    assert backoff.get("k") == 20
    assert backoff.remaining("k", clock.now) == pytest.approx(0.2)
    clock.now += 0.25
    assert not backoff.in_backoff_since("k", clock.now - 0.25)


def test_image_backoff_counts_from_the_last_failure_and_forget_drops_a_pod() -> None:
    clock = Clock()
    backoff = Backoff(clock=clock)
    backoff.next("u1_img", clock.now)
    assert backoff.in_backoff_since_update("u1_img")
    clock.now += 10.5
    assert not backoff.in_backoff_since_update("u1_img")
    backoff.forget("u1_")
    assert backoff.get("u1_img") == 0
