"""The kubelet's image manager pulling from a registry: imagePullSecrets read through the API (a
fake client here), upstream's events, ErrImagePull then ImagePullBackOff, the Always policy, and
a registry that cannot be reached while the image is on the node."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

from kubelite.agent.imagepull import ImagePuller
from kubelite.client.resources import SECRETS
from kubelite.images.distribution.credentials import encode_auth
from kubelite.images.distribution.node import NodeImages
from kubelite.images.distribution.registries import RegistryHosts
from kubelite.images.oci import OCI_MANIFEST
from kubelite.images.store import ImageStore
from kubelite.images.testimages import BUSYBOX_REF, LayerBuilder, build_image, ensure_test_images
from kubelite.objects.errors import NotFound
from tests.integration.conftest import free_port
from tests.integration.distribution_fakes import FakeRegistry

Event = tuple[str, str, str]


class SecretsClient:
    """The one call the image manager makes: GET a Secret."""

    def __init__(self, secrets: dict[str, dict[str, Any]]) -> None:
        self.secrets = secrets
        self.asked: list[tuple[str, str]] = []

    async def get(self, rt: Any, name: str, namespace: str | None = None) -> dict[str, Any]:
        assert rt == SECRETS
        self.asked.append((namespace or "", name))
        if name not in self.secrets:
            raise NotFound(f'secrets "{name}" not found')
        return self.secrets[name]


def docker_secret(host: str, user: str, password: str) -> dict[str, Any]:
    config = {"auths": {host: {"auth": encode_auth(user, password)}}}
    return {"metadata": {"name": "regcred", "namespace": "apps"}, "type": "kubernetes.io/dockerconfigjson",
            "data": {".dockerconfigjson": base64.b64encode(json.dumps(config).encode()).decode()}}


def pod(*secrets: str) -> dict[str, Any]:
    return {"metadata": {"name": "p", "namespace": "apps", "uid": "u1"},
            "spec": {"imagePullSecrets": [{"name": s} for s in secrets]}}


@pytest.fixture
def fake() -> FakeRegistry:
    registry = FakeRegistry(auth="basic", users={"puller": "s3cret"})
    built = build_image([LayerBuilder().file("app", "v1\n").build()], cmd=["cat", "/app"])
    registry.put_blobs({d: b for d, b in built.blobs.items() if d != built.manifest.digest})
    for tag in ("1.0", "latest"):
        registry.put_manifest("team/app", tag, OCI_MANIFEST, built.blobs[built.manifest.digest])
    return registry


async def test_pull_with_an_image_pull_secret_then_present(fake: FakeRegistry, tmp_path: Path) -> None:
    store = NodeImages(ImageStore(tmp_path / "images"), hosts=RegistryHosts(), data_dir=tmp_path)
    async with fake.serve() as host:
        client = SecretsClient({"regcred": docker_secret(host, "puller", "s3cret")})
        puller = ImagePuller(store, client=client)  # type: ignore[arg-type]
        events: list[Event] = []
        image = f"{host}/team/app:1.0"
        failure = await puller.ensure("u1", {"image": image}, lambda *e: events.append(e), pod=pod("missing", "regcred"))
        assert failure is None
        assert client.asked == [("apps", "missing"), ("apps", "regcred")]
        size = store.get(image).size
        assert [e[:2] for e in events] == [("Normal", "Pulling"), ("Warning", "FailedToRetrieveImagePullSecret"),
                                          ("Normal", "Pulled")]
        assert events[0][2] == f'Pulling image "{image}"'
        assert events[1][2] == ("Unable to retrieve some image pull secrets (missing); attempting to pull the image "
                                "may not succeed.")
        assert events[2][2].startswith(f'Successfully pulled image "{image}" in ')
        assert events[2][2].endswith(f" including waiting). Image size: {size} bytes.")

        events.clear()
        assert await puller.ensure("u1", {"image": image}, lambda *e: events.append(e), pod=pod()) is None
        assert events == [("Normal", "Pulled", f'Container image "{image}" already present on machine')]

        # Always: the registry is asked (a HEAD), nothing is downloaded, the pull is reported as upstream does
        gets = fake.requests["GET blob"] + fake.requests["GET manifest"]
        events.clear()
        always = {"image": image, "imagePullPolicy": "Always"}
        assert await puller.ensure("u1", always, lambda *e: events.append(e), pod=pod("regcred")) is None
        assert [e[1] for e in events] == ["Pulling", "Pulled"] and "Successfully pulled" in events[1][2]
        assert fake.requests["GET blob"] + fake.requests["GET manifest"] == gets


async def test_failed_pulls_back_off(fake: FakeRegistry, tmp_path: Path) -> None:
    store = NodeImages(ImageStore(tmp_path / "images"), hosts=RegistryHosts(), data_dir=tmp_path)
    async with fake.serve() as host:
        puller = ImagePuller(store, client=SecretsClient({"regcred": docker_secret(host, "puller", "s3cret")}))  # type: ignore[arg-type]
        events: list[Event] = []
        missing = f"{host}/team/nosuch:1"
        failure = await puller.ensure("u1", {"image": missing}, lambda *e: events.append(e), pod=pod("regcred"))
        expected = (f'failed to pull and unpack image "{missing}": failed to resolve reference "{missing}": '
                    f"{missing}: not found")
        assert failure is not None and (failure.reason, failure.message, failure.retry) == ("ErrImagePull", expected, 10)
        assert events == [("Normal", "Pulling", f'Pulling image "{missing}"'),
                          ("Warning", "Failed", f'Failed to pull image "{missing}": {expected}')]
        events.clear()
        again = await puller.ensure("u1", {"image": missing}, lambda *e: events.append(e), pod=pod("regcred"))
        assert again is not None and again.reason == "ImagePullBackOff"
        assert again.message == f'Back-off pulling image "{missing}": ErrImagePull: {expected}'
        assert events == [("Normal", "BackOff", f'Back-off pulling image "{missing}"')]

        denied = await puller.ensure("u2", {"image": f"{host}/team/app:1.0"}, lambda *e: None, pod=pod())
        assert denied is not None and denied.reason == "ErrImagePull" and "pull access denied" in denied.message
        with pytest.raises(Exception, match="not in the node's image store"):
            store.get(f"{host}/team/app:1.0")


async def test_always_uses_the_local_image_when_the_registry_is_unreachable(tmp_path: Path) -> None:
    images = ImageStore(tmp_path / "images")
    ensure_test_images(images)
    image = f"127.0.0.1:{free_port()}/offline/busybox:latest"  # nothing listens there
    images.tag(BUSYBOX_REF, image)
    puller = ImagePuller(NodeImages(images, data_dir=tmp_path))
    events: list[Event] = []
    assert await puller.ensure("u1", {"image": image}, lambda *e: events.append(e), pod=pod()) is None
    assert [e[1] for e in events] == ["Pulling", "Pulled"]
    assert "already present on machine (the registry is unreachable" in events[1][2]

    absent = f"127.0.0.1:{free_port()}/offline/other:1"
    failure = await puller.ensure("u1", {"image": absent}, lambda *e: None, pod=pod())
    assert failure is not None and failure.reason == "ErrImagePull" and "cannot reach" in failure.message
