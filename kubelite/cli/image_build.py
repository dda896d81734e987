"""`kubelite image build`: OCI images from a Dockerfile."""

from __future__ import annotations

import argparse
from typing import Any


def add_parsers(sub: Any, common: argparse.ArgumentParser) -> dict[str, Any]:
    return {}
