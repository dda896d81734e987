"""The node agent pulls images (issue 6's kubelet part), through the real kubectl: from Debian's
docker-registry, from a registry that wants credentials given as an imagePullSecret, and a missing
image going from ErrImagePull to ImagePullBackOff. Registries listen on 127.0.0.1 (the agent runs
in the host's network namespace); each test removes what it pulled from the node's store."""

from __future__ import annotations

import asyncio
import base64
import json
import threading
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import pytest

from kubelite.images.distribution import push
from kubelite.images.distribution.credentials import encode_auth
from kubelite.images.oci import OCI_MANIFEST
from kubelite.images.store import ImageStore
from kubelite.images.testimages import BUSYBOX_REF, build_test_images, ensure_test_images
from tests.e2e.conftest import NodeCluster, wait_for
from tests.integration.distribution_fakes import FakeRegistry, docker_registry  # noqa: F401 - the registry fixture
from tests.integration.registry_helpers import DockerRegistry

pytestmark = pytest.mark.e2e

Obj = dict[str, Any]
SLEEPER = ["sh", "-c", 'trap "exit 0" TERM; sleep 3600 & wait']
PULL_FAILED = ("ErrImagePull", "ImagePullBackOff")


def pod(ns: str, name: str, image: str, **spec: Any) -> Obj:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": ns},
            "spec": {"containers": [{"name": "c", "image": image, "command": SLEEPER}],
                     "terminationGracePeriodSeconds": 1, **spec}}


def events(cluster: NodeCluster, ns: str, name: str) -> list[tuple[str, str]]:
    out = cluster.kubectl("get", "events", "-n", ns, "--field-selector", f"involvedObject.name={name}",
                          "-o", "json").stdout
    return [(e["reason"], e["message"]) for e in json.loads(out)["items"]]


def waiting(p: Obj) -> Obj:
    statuses = p.get("status", {}).get("containerStatuses") or [{}]
    return dict(statuses[0].get("state", {}).get("waiting") or {})


class FakeThread:
    """The fake registry (basic auth) served from its own event loop thread."""

    def __init__(self, registry: FakeRegistry) -> None:
        self.registry = registry
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._stop: asyncio.Event | None = None
        self._done: Future[None] | None = None

    def start(self) -> str:
        self.thread.start()
        ready: Future[str] = Future()

        async def serve() -> None:
            self._stop = asyncio.Event()
            async with self.registry.serve() as host:
                ready.set_result(host)
                await self._stop.wait()

        self._done = asyncio.run_coroutine_threadsafe(serve(), self.loop)
        return ready.result(10)

    def stop(self) -> None:
        assert self._stop is not None and self._done is not None
        self.loop.call_soon_threadsafe(self._stop.set)
        self._done.result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


def remove_pods(cluster: NodeCluster, ns: str) -> None:
    cluster.kubectl("delete", "pods", "--all", "-n", ns, "--wait=false")
    wait_for(lambda: not json.loads(cluster.kubectl("get", "pods", "-n", ns, "-o", "json").stdout)["items"],
             what=f"the pods of {ns} to go")
    wait_for(cluster.nothing_left, what="the node to be clean of those pods")


def forget(cluster: NodeCluster, *names: str) -> None:
    store = ImageStore(cluster.paths.images)
    for name in names:
        store.remove(name)


def test_pods_pull_from_docker_registry(node_cluster: NodeCluster, node_ns: str, registry: DockerRegistry,
                                        tmp_path: Path) -> None:
    source = ImageStore(tmp_path / "source")
    ensure_test_images(source)
    image = f"{registry.host}/e2e/busybox:1.0"
    source.tag(BUSYBOX_REF, image)
    asyncio.run(push(source, image))
    try:
        node_cluster.apply(pod(node_ns, "pulled", image))
        node_cluster.wait_pod(node_ns, "pulled", lambda p: p.get("status", {}).get("phase") == "Running",
                              what="Running from the pulled image")
        found = dict(events(node_cluster, node_ns, "pulled"))
        assert found["Pulling"] == f'Pulling image "{image}"'
        assert found["Pulled"].startswith(f'Successfully pulled image "{image}" in ')
        assert found["Pulled"].endswith(f"Image size: {source.get(image).size} bytes.")

        missing = f"{registry.host}/e2e/nosuch:1.0"
        node_cluster.apply(pod(node_ns, "missing", missing))
        # the status passes through ErrImagePull quickly (the next sync is already in the back-off): the events
        # keep both
        wanted = {("Failed", "Error: ErrImagePull"), ("Failed", "Error: ImagePullBackOff"),
                  ("BackOff", f'Back-off pulling image "{missing}"')}
        wait_for(lambda: wanted <= set(events(node_cluster, node_ns, "missing")), what="ErrImagePull, then ImagePullBackOff")
        assert waiting(node_cluster.pod(node_ns, "missing") or {}).get("reason") in PULL_FAILED
        failed = [m for r, m in events(node_cluster, node_ns, "missing") if r == "Failed"]
        assert f'Failed to pull image "{missing}": failed to pull and unpack image "{missing}": failed to resolve ' \
               f'reference "{missing}": {missing}: not found' in failed
    finally:
        remove_pods(node_cluster, node_ns)
        forget(node_cluster, image)


def test_an_image_pull_secret_opens_a_private_registry(node_cluster: NodeCluster, node_ns: str) -> None:
    registry = FakeRegistry(auth="basic", users={"puller": "s3cret"})
    built = build_test_images()[BUSYBOX_REF]
    registry.put_blobs({d: b for d, b in built.blobs.items() if d != built.manifest.digest})
    registry.put_manifest("private/busybox", "1.0", OCI_MANIFEST, built.blobs[built.manifest.digest])
    server = FakeThread(registry)
    host = server.start()
    image = f"{host}/private/busybox:1.0"
    try:
        node_cluster.apply(pod(node_ns, "denied", image))
        denied = node_cluster.wait_pod(node_ns, "denied", lambda p: waiting(p).get("reason") in PULL_FAILED,
                                       what="ErrImagePull without credentials")
        assert "pull access denied" in waiting(denied)["message"]

        config = {"auths": {host: {"auth": encode_auth("puller", "s3cret")}}}
        node_cluster.apply({"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/dockerconfigjson",
                            "metadata": {"name": "regcred", "namespace": node_ns},
                            "data": {".dockerconfigjson": base64.b64encode(json.dumps(config).encode()).decode()}})
        node_cluster.apply(pod(node_ns, "allowed", image, imagePullSecrets=[{"name": "regcred"}]))
        node_cluster.wait_pod(node_ns, "allowed", lambda p: p.get("status", {}).get("phase") == "Running",
                              what="Running with the imagePullSecret")
        assert any(r == "Pulled" and m.startswith("Successfully pulled image")
                   for r, m in events(node_cluster, node_ns, "allowed"))
    finally:
        remove_pods(node_cluster, node_ns)
        server.stop()
        forget(node_cluster, image)
