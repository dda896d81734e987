"""Platform selection from a multi-platform index, platform flags, pull names, progress text."""

from __future__ import annotations

import io

import pytest

from kubelite.images.distribution.progress import (
    LineProgress,
    TtyProgress,
    human_size,
    progress_for,
    progress_text,
)
from kubelite.images.distribution.pull import parse_platform, pull_name
from kubelite.images.oci import Descriptor, ImageFormatError, pick_platform
from kubelite.images.reference import parse


def entry(arch: str, variant: str = "", os: str = "linux", digest: str = "") -> Descriptor:
    platform = {"os": os, "architecture": arch} | ({"variant": variant} if variant else {})
    return Descriptor("application/vnd.oci.image.manifest.v1+json", digest or f"sha256:{arch}{variant}", 1,
                      platform=tuple(sorted(platform.items())))


INDEX = [entry("arm64", "v8"), entry("amd64"), entry("arm", "v7"), entry("unknown", os="unknown"), entry("s390x")]


@pytest.mark.parametrize(("flag", "digest"), [
    ("linux/amd64", "sha256:amd64"), ("amd64", "sha256:amd64"), ("x86_64", "sha256:amd64"),
    ("linux/arm64/v8", "sha256:arm64v8"), ("linux/arm64", "sha256:arm64v8"), ("linux/arm/v7", "sha256:armv7"),
])
def test_pick_the_asked_platform(flag: str, digest: str) -> None:
    assert pick_platform(INDEX, parse_platform(flag)).digest == digest


def test_the_host_platform_by_default() -> None:
    assert parse_platform(None) == parse_platform("")
    assert pick_platform(INDEX, parse_platform(None)).digest in {"sha256:amd64", "sha256:arm64v8"}


def test_no_matching_platform_lists_what_there_is() -> None:
    with pytest.raises(ImageFormatError, match=r"linux/riscv64 \(index has: linux/arm64/v8, linux/amd64"):
        pick_platform(INDEX, parse_platform("linux/riscv64"))


@pytest.mark.parametrize("flag", ["linux/", "a/b/c/d", "/amd64"])
def test_bad_platform_flags(flag: str) -> None:
    with pytest.raises(ValueError, match="os/arch"):
        parse_platform(flag)


def test_pull_names() -> None:
    digest = "sha256:" + "a" * 64
    assert pull_name(parse("nginx")) == "docker.io/library/nginx:latest"
    assert pull_name(parse("localhost:5000/app:1.0")) == "localhost:5000/app:1.0"
    assert pull_name(parse(f"localhost:5000/app:1.0@{digest}")) == f"localhost:5000/app@{digest}"


def test_progress_text_as_docker_prints_it() -> None:
    assert human_size(12_345_678) == "12.35MB" and human_size(64_000_000) == "64MB" and human_size(512) == "512B"
    assert progress_text(32, 64).startswith("[" + "=" * 25 + ">") and progress_text(32, 64).endswith("]  32B/64B")
    out = io.StringIO()
    lines = LineProgress(out)
    lines.update("abc", "Downloading", current=1, total=2)
    lines.update("abc", "Pull complete")
    lines.update("abc", "Pull complete")
    lines.update("def", "Mounted from kl/base")
    assert out.getvalue() == "abc: Pull complete\ndef: Mounted from kl/base\n"


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_terminal_progress_rewrites_each_layer_in_place() -> None:
    out = Terminal()
    progress = progress_for(out)
    assert isinstance(progress, TtyProgress)
    progress.note("1.0: Pulling from app")
    progress.update("aaa", "Pulling fs layer")
    progress.update("bbb", "Pulling fs layer")
    progress.update("aaa", "Downloading", current=10, total=100)
    progress.update("aaa", "Downloading", current=20, total=100)  # within 0.1 s of the last draw: skipped
    progress.update("aaa", "Pull complete")
    text = out.getvalue()
    assert text.startswith("1.0: Pulling from app\naaa: Pulling fs layer\nbbb: Pulling fs layer\n")
    assert "\x1b[2A\r\x1b[2Kaaa: Downloading [=====>" in text and "10B/100B\x1b[2B\r" in text
    assert "20B/100B" not in text and text.endswith("\x1b[2A\r\x1b[2Kaaa: Pull complete\x1b[2B\r")
    assert isinstance(progress_for(io.StringIO()), LineProgress)
