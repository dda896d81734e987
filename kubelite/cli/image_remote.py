"""`kubelite image pull|push`: images over the OCI distribution protocol."""

from __future__ import annotations

import argparse
from typing import Any


def add_parsers(sub: Any, common: argparse.ArgumentParser) -> dict[str, Any]:
    return {}
