"""The image manager's pure parts: what a policy does with a present or absent image, upstream's
duration format in the Pulled event, and containerd's wording of pull errors."""

from __future__ import annotations

import pytest

from kubelite.agent.imagepull import plan, pull_duration, pull_error
from kubelite.images.distribution.errors import AuthError, NotFound, RegistryUnreachable


@pytest.mark.parametrize(("policy", "present", "action"), [
    ("Never", True, "use"), ("Never", False, "never"),
    ("IfNotPresent", True, "use"), ("IfNotPresent", False, "pull"),
    ("Always", True, "pull"), ("Always", False, "pull"),
])
def test_plan(policy: str, present: bool, action: str) -> None:
    assert plan(policy, present) == action


@pytest.mark.parametrize(("seconds", "text"), [
    (0, "0s"), (0.0004, "0s"), (0.512, "512ms"), (1.2, "1.2s"), (2.0, "2s"), (2.4499, "2.449s"),
    (62.5, "1m2.5s"), (120, "2m0s"),
])
def test_pull_duration(seconds: float, text: str) -> None:
    assert pull_duration(seconds) == text


def test_pull_errors_name_the_normalised_image() -> None:
    missing = NotFound(404, "", "docker.io/library/nosuch:latest: not found")  # as pull_image raises it
    assert pull_error("nosuch", missing) == (
        'failed to pull and unpack image "docker.io/library/nosuch:latest": failed to resolve reference '
        '"docker.io/library/nosuch:latest": docker.io/library/nosuch:latest: not found')
    assert "failed to resolve reference" in pull_error("a", AuthError("pull access denied"))
    assert pull_error("a:1", RegistryUnreachable("cannot reach x")) == (
        'failed to pull and unpack image "docker.io/library/a:1": cannot reach x')
