"""Size-based container log rotation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

from kubelite.agent.logrotate import LogRotator, rotate_if_needed, rotated_files


def test_small_log_is_left_alone(tmp_path: Path) -> None:
    log = tmp_path / "0.log"
    log.write_bytes(b"x" * 10)
    assert not rotate_if_needed(log, reopen=lambda: True, max_size=100)
    assert log.exists() and rotated_files(log) == []


def test_full_log_is_renamed_reopened_and_old_ones_pruned(tmp_path: Path) -> None:
    log = tmp_path / "0.log"
    reopened: list[bool] = []
    start = datetime(2026, 1, 1, tzinfo=UTC)
    for i in range(6):
        log.write_bytes(b"line\n" * 50)
        assert rotate_if_needed(log, reopen=lambda: reopened.append(True) or True, max_size=100,
                                max_files=3, now=start + timedelta(seconds=i))
        assert not log.exists()  # the runtime (conmon) creates the new file on reopen
    assert len(reopened) == 6
    kept = rotated_files(log)
    assert len(kept) == 2  # the live file plus the two newest rotated ones make three
    assert kept[-1].name.endswith("20260101-000005.000000")


def test_rename_is_undone_when_the_runtime_cannot_reopen(tmp_path: Path) -> None:
    log = tmp_path / "0.log"
    log.write_bytes(b"x" * 200)
    assert not rotate_if_needed(log, reopen=lambda: False, max_size=100)
    assert log.read_bytes() == b"x" * 200 and rotated_files(log) == []


def test_rotator_walks_running_containers_only(tmp_path: Path) -> None:
    logs = {("p1", "web"): tmp_path / "web.log", ("p1", "done"): tmp_path / "done.log"}
    for path in logs.values():
        path.write_bytes(b"x" * 200)
    status = SimpleNamespace(containers={"web": SimpleNamespace(state="running"),
                                         "done": SimpleNamespace(state="exited")})
    reopened: list[tuple[str, str]] = []
    runtime = SimpleNamespace(pod_uids=lambda: ["p1"], pod_status=lambda uid: status,
                              log_path=lambda uid, name: logs[(uid, name)],
                              reopen_log=lambda uid, name: reopened.append((uid, name)) or True)
    rotator = LogRotator(runtime, max_size=100)
    assert rotator.enabled() and rotator.rotate_all() == 1
    assert reopened == [("p1", "web")] and logs[("p1", "done")].exists()
