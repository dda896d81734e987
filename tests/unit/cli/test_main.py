"""`kubelite` as a shell pipeline's first command: a reader that leaves early is no error."""

from __future__ import annotations

import os
from typing import Any

import pytest

import kubelite.cli.status
from kubelite.cli.main import main


def test_a_closed_pipe_ends_the_command_quietly(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    def writes_to_a_closed_pipe(args: Any) -> int:
        raise BrokenPipeError(32, "Broken pipe")  # what print() raises once `| head -1` has left

    monkeypatch.setattr(kubelite.cli.status, "run", writes_to_a_closed_pipe)
    saved = os.dup(1)
    try:
        assert main(["status", "--data-dir", str(tmp_path)]) == 0
    finally:
        os.dup2(saved, 1)  # main() points stdout at /dev/null so the interpreter's exit flush is quiet
        os.close(saved)
