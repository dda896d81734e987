"""imagePullPolicy against a local image store: present, Never, the failed "pull" and its back-off."""

from __future__ import annotations

from pathlib import Path

import pytest

from kubelite.agent.imagepull import ImagePuller, pull_policy
from kubelite.images.api import ImageNotFound, ImageRecord, InvalidImageName


class Store:
    def __init__(self, *present: str) -> None:
        self.present = set(present)

    def get(self, reference: str) -> ImageRecord:
        if reference.startswith("UPPER"):
            raise InvalidImageName("invalid reference format")
        if reference not in self.present:
            raise ImageNotFound(reference)
        return ImageRecord(reference, "sha256:c", "sha256:m", {}, (Path("/"),), 1)

    def list(self) -> list[ImageRecord]:
        return []


class Clock:
    now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize(("container", "policy"), [
    ({"image": "busybox"}, "Always"), ({"image": "busybox:latest"}, "Always"), ({"image": "busybox:1.36"}, "IfNotPresent"),
    ({"image": "localhost:5000/app"}, "Always"), ({"image": "b@sha256:ab"}, "IfNotPresent"),
    ({"image": "busybox", "imagePullPolicy": "Never"}, "Never"),
])
def test_default_policy(container: dict, policy: str) -> None:
    assert pull_policy(container) == policy


async def test_present_never_and_pull_backoff() -> None:
    events: list[tuple[str, str, str]] = []
    clock = Clock()
    puller = ImagePuller(Store("busybox:1.36"), clock=clock)
    record = lambda *e: events.append(e)  # noqa: E731
    assert await puller.ensure("u", {"image": "busybox:1.36"}, record) is None
    assert events == [("Normal", "Pulled", 'Container image "busybox:1.36" already present on machine')]

    never = await puller.ensure("u", {"image": "gone:1", "imagePullPolicy": "Never"}, record)
    assert never is not None and never.reason == "ErrImageNeverPull"
    assert never.message == 'Container image "gone:1" is not present with pull policy of Never'

    first = await puller.ensure("u", {"image": "gone:1", "imagePullPolicy": "IfNotPresent"}, record)
    assert first is not None and (first.reason, first.retry) == ("ErrImagePull", 10)
    assert "not available yet" in first.message
    clock.now += 5
    second = await puller.ensure("u", {"image": "gone:1", "imagePullPolicy": "IfNotPresent"}, record)
    assert second is not None and second.reason == "ImagePullBackOff" and second.retry == pytest.approx(5)
    assert second.message.startswith('Back-off pulling image "gone:1": ErrImagePull: image "gone:1" is not present')
    clock.now += 6
    third = await puller.ensure("u", {"image": "gone:1", "imagePullPolicy": "IfNotPresent"}, record)
    assert third is not None and (third.reason, third.retry) == ("ErrImagePull", 10)  # the pod worker's period
    assert puller.backoff.get("u_gone:1") == 20
    assert [e[1] for e in events[1:]] == ["ErrImageNeverPull", "Pulling", "Failed", "BackOff", "Pulling", "Failed"]

    invalid = await puller.ensure("u", {"image": "UPPER"}, record)
    assert invalid is not None and invalid.reason == "InvalidImageName"


async def test_without_a_store_every_image_is_present() -> None:
    events: list[tuple[str, str, str]] = []
    assert await ImagePuller(None).ensure("u", {"image": "nginx"}, lambda *e: events.append(e)) is None
    assert events[0][1] == "Pulled"
