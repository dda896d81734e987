"""Image references parse and normalise as Docker's reference package does."""

from __future__ import annotations

import pytest

from kubelite.images.api import InvalidImageName
from kubelite.images.reference import LEGACY_DEFAULT_DOMAIN, is_image_id, normalize, parse

D = "sha256:" + "a" * 64


@pytest.mark.parametrize(("text", "want"), [
    ("busybox", "docker.io/library/busybox:latest"),
    ("busybox:1.36", "docker.io/library/busybox:1.36"),
    ("library/busybox", "docker.io/library/busybox:latest"),
    ("docker.io/busybox", "docker.io/library/busybox:latest"),
    ("docker.io/library/busybox:latest", "docker.io/library/busybox:latest"),
    (f"{LEGACY_DEFAULT_DOMAIN}/busybox", "docker.io/library/busybox:latest"),
    (f"{LEGACY_DEFAULT_DOMAIN}/foo/bar", "docker.io/foo/bar:latest"),
    ("foo/bar", "docker.io/foo/bar:latest"),
    ("foo/bar/baz:v2", "docker.io/foo/bar/baz:v2"),
    ("localhost/foo", "localhost/foo:latest"),
    ("localhost:5000/foo:v1", "localhost:5000/foo:v1"),
    ("127.0.0.1:5000/debian", "127.0.0.1:5000/debian:latest"),  # "library/" only on Docker Hub
    ("127.0.0.1:5000/library/debian", "127.0.0.1:5000/library/debian:latest"),
    ("registry.example.test/pause:3.9", "registry.example.test/pause:3.9"),
    ("example.com/team/app", "example.com/team/app:latest"),
    ("myregistry:5000/app", "myregistry:5000/app:latest"),  # a port makes it a domain
    ("[::1]:5000/foo", "[::1]:5000/foo:latest"),
    ("[2001:db8::1]/foo:1", "[2001:db8::1]/foo:1"),
    ("Upper.Example.com/foo", "Upper.Example.com/foo:latest"),  # domains may have upper case
    ("localhost", "docker.io/library/localhost:latest"),
    ("localhost:5000", "docker.io/library/localhost:5000"),  # no "/": a Hub name with tag 5000
    ("foo@" + D, "docker.io/library/foo@" + D),  # a digest gets no default tag
    ("foo:v1@" + D, "docker.io/library/foo:v1@" + D),
    ("foo__bar.baz-----qux", "docker.io/library/foo__bar.baz-----qux:latest"),
    ("foo:" + "T" * 128, "docker.io/library/foo:" + "T" * 128),
    ("foo:_v.1-x", "docker.io/library/foo:_v.1-x"),
])
def test_normalize(text: str, want: str) -> None:
    assert normalize(text) == want


@pytest.mark.parametrize(("text", "message"), [
    ("", "invalid reference format"),
    ("Busybox", "must be lowercase"),
    ("foo/Bar", "must be lowercase"),
    ("busybox:", "invalid reference format"),
    (":latest", "invalid reference format"),
    ("busybox:a:b", "invalid reference format"),
    ("-busybox", "invalid reference format"),
    ("busybox-", "invalid reference format"),
    ("foo___bar", "invalid reference format"),
    ("foo/../bar", "invalid reference format"),
    ("http://foo/bar", "invalid reference format"),
    ("foo:" + "a" * 129, "invalid reference format"),
    ("foo:-tag", "invalid reference format"),
    ("a" * 64, "cannot specify 64-byte hexadecimal strings"),
    ("foo@sha256:abc", "invalid reference format"),
    ("foo@sha256:" + "a" * 63, "invalid checksum digest format"),
    ("foo@sha256:" + "A" * 64, "invalid checksum digest format"),
    ("foo@md5:" + "a" * 32, "unsupported digest algorithm"),
    ("example.com/" + "a" * 250, "must not be more than 255 characters"),
])
def test_invalid(text: str, message: str) -> None:
    with pytest.raises(InvalidImageName, match=message):
        normalize(text)


def test_parts_and_familiar_forms() -> None:
    ref = parse("localhost:5000/team/app:v1@" + D)
    assert (ref.domain, ref.path, ref.tag, ref.digest) == ("localhost:5000", "team/app", "v1", D)
    assert ref.repository == "localhost:5000/team/app"
    assert parse("busybox").familiar() == "busybox"
    assert parse("busybox:1").with_default_tag().familiar() == "busybox:1"
    assert parse("docker.io/foo/bar:1").familiar() == "foo/bar:1"
    assert parse("docker.io/library/a/b").familiar_name() == "library/a/b"
    assert parse("localhost:5000/x:1").familiar() == "localhost:5000/x:1"
    assert parse("busybox").tag == "" and parse("busybox").with_default_tag().tag == "latest"


def test_image_ids() -> None:
    assert is_image_id("a" * 64) and is_image_id(D)
    assert not is_image_id("a" * 63) and not is_image_id("busybox") and not is_image_id("sha256:" + "g" * 64)
