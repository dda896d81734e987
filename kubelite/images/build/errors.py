"""The one error a build reports: its message names the Dockerfile line (`Dockerfile:7: ...`) or
the option at fault, and says what to do next; the CLI prints it without a traceback."""

from __future__ import annotations


class BuildError(Exception):
    pass
