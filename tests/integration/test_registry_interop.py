"""Our registry with tools nobody here wrote: skopeo pushes into it and pulls out of it (OCI and
Docker schema 2), copies between two of its repositories (cross-repository mounts), lists tags,
inspects; umoci builds and unpacks an image that went through it; and images travel between it
and Debian's docker-registry with the same digests on both sides. No root needed."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from kubelite.images.oci import DOCKER_MANIFEST, OCI_INDEX, OCI_MANIFEST, canonical_json, digest_of
from kubelite.images.testimages import BUSYBOX_REF, HTTPD_REF, build_test_images, write_layout
from tests.integration.registry_helpers import DockerRegistry, RegistryThread, blob_files, require, run

INSECURE = ("--src-tls-verify=false", "--dest-tls-verify=false")


@pytest.fixture(scope="module")
def layout(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An OCI layout holding the httpd test image (busybox + one layer) tagged 1.0."""
    require("skopeo", "umoci")
    return write_layout(tmp_path_factory.mktemp("layout"), {"1.0": build_test_images()[HTTPD_REF]})


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[RegistryThread]:
    server = RegistryThread(tmp_path / "registry").start()
    yield server
    server.stop()


def index_digests(layout_dir: Path) -> dict[str, str]:
    index = json.loads((layout_dir / "index.json").read_text())
    return {m["annotations"]["org.opencontainers.image.ref.name"]: m["digest"] for m in index["manifests"]}


def skopeo_copy(source: str, dest: str, *extra: str) -> None:
    run("skopeo", "copy", "-q", *INSECURE, *extra, source, dest)


def test_skopeo_push_pull_round_trip(layout: Path, registry: RegistryThread, tmp_path: Path) -> None:
    remote = f"docker://{registry.host}/x/y:1.0"
    skopeo_copy(f"oci:{layout}:1.0", remote)
    skopeo_copy(remote, f"oci:{tmp_path / 'pulled'}:1.0")

    want = index_digests(layout)["1.0"]
    assert index_digests(tmp_path / "pulled") == {"1.0": want}
    pushed = {p.name: p.read_bytes() for p in (layout / "blobs/sha256").iterdir()}
    pulled = {p.name: p.read_bytes() for p in (tmp_path / "pulled/blobs/sha256").iterdir()}
    assert pulled == pushed  # every byte came back: manifest, config, layers
    assert set(blob_files(registry.root)) == {f"sha256:{name}" for name in pushed}

    info = json.loads(run("skopeo", "inspect", "--tls-verify=false", remote))
    assert info["Digest"] == want and info["RepoTags"] == ["1.0"] and len(info["Layers"]) == 2
    raw = json.loads(run("skopeo", "inspect", "--raw", "--tls-verify=false", remote))
    assert raw["mediaType"] == OCI_MANIFEST


def test_tags_and_repositories_listed(layout: Path, registry: RegistryThread) -> None:
    for tag in ("1.0", "1.1", "latest"):
        skopeo_copy(f"oci:{layout}:1.0", f"docker://{registry.host}/library/hello-world:{tag}")
    listed = json.loads(run("skopeo", "list-tags", "--tls-verify=false", f"docker://{registry.host}/library/hello-world"))
    assert listed["Tags"] == ["1.0", "1.1", "latest"]


def test_copy_between_repositories_mounts_blobs(layout: Path, registry: RegistryThread, tmp_path: Path) -> None:
    skopeo_copy(f"oci:{layout}:1.0", f"docker://{registry.host}/team/a:1.0")
    before = blob_files(registry.root)
    copy = subprocess.run(["skopeo", "--debug", "copy", *INSECURE, f"docker://{registry.host}/team/a:1.0",
                           f"docker://{registry.host}/team/b:2.0"], capture_output=True, text=True, timeout=120)
    assert copy.returncode == 0, copy.stderr
    # skopeo knows where it saw the layers and asks us to mount them rather than upload them again.
    assert "mount OK" in copy.stderr, "skopeo did not mount any blob:\n" + copy.stderr[-3000:]
    assert blob_files(registry.root) == before  # nothing new: the same content, stored once
    skopeo_copy(f"docker://{registry.host}/team/b:2.0", f"oci:{tmp_path / 'b'}:2.0")
    assert index_digests(tmp_path / "b") == {"2.0": index_digests(layout)["1.0"]}


def test_docker_schema2_push_and_pull(layout: Path, registry: RegistryThread, tmp_path: Path) -> None:
    remote = f"docker://{registry.host}/x/docker:1.0"
    skopeo_copy(f"oci:{layout}:1.0", remote, "--format", "v2s2")
    raw = json.loads(run("skopeo", "inspect", "--raw", "--tls-verify=false", remote))
    assert raw["mediaType"] == DOCKER_MANIFEST
    assert raw["config"]["mediaType"] == "application/vnd.docker.container.image.v1+json"
    skopeo_copy(remote, f"dir:{tmp_path / 'dir'}")
    assert json.loads((tmp_path / "dir/manifest.json").read_text()) == raw  # served byte for byte as pushed


def test_multi_platform_index(registry: RegistryThread, tmp_path: Path) -> None:
    """`skopeo copy --all` of an index: the platform manifests go first, then the index that lists them."""
    require("skopeo")
    images = build_test_images()
    layout = write_layout(tmp_path / "multi", {"amd64": images[BUSYBOX_REF], "arm64": images[HTTPD_REF]})
    entries = [{**images[ref].manifest.to_json(), "platform": {"os": "linux", "architecture": arch}}
               for ref, arch in ((BUSYBOX_REF, "amd64"), (HTTPD_REF, "arm64"))]
    index = canonical_json({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries})
    (layout / "blobs/sha256" / digest_of(index).removeprefix("sha256:")).write_bytes(index)
    (layout / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [
        {"mediaType": OCI_INDEX, "digest": digest_of(index), "size": len(index),
         "annotations": {"org.opencontainers.image.ref.name": "multi"}}]}))

    remote = f"docker://{registry.host}/multi/arch:1.0"
    skopeo_copy(f"oci:{layout}:multi", remote, "--all")
    assert json.loads(run("skopeo", "inspect", "--raw", "--tls-verify=false", remote)) == json.loads(index)
    skopeo_copy(remote, f"oci:{tmp_path / 'back'}:multi", "--all")
    assert index_digests(tmp_path / "back") == {"multi": digest_of(index)}


def test_umoci_image_through_the_registry(registry: RegistryThread, tmp_path: Path) -> None:
    require("skopeo", "umoci")
    built = tmp_path / "built"
    run("umoci", "init", "--layout", built)
    run("umoci", "new", "--image", f"{built}:base")
    run("umoci", "unpack", "--rootless", "--image", f"{built}:base", tmp_path / "bundle")
    (tmp_path / "bundle/rootfs/hello.txt").write_text("hello from the registry\n")
    run("umoci", "repack", "--image", f"{built}:base", tmp_path / "bundle")
    run("umoci", "config", "--image", f"{built}:base", "--config.cmd", "cat", "--config.cmd", "/hello.txt", "--tag", "1.0")

    skopeo_copy(f"oci:{built}:1.0", f"docker://{registry.host}/umoci/hello:1.0")
    skopeo_copy(f"docker://{registry.host}/umoci/hello:1.0", f"oci:{tmp_path / 'pulled'}:1.0")
    run("umoci", "unpack", "--rootless", "--image", f"{tmp_path / 'pulled'}:1.0", tmp_path / "out")
    assert (tmp_path / "out/rootfs/hello.txt").read_text() == "hello from the registry\n"
    config = json.loads((tmp_path / "out/config.json").read_text())
    assert config["process"]["args"] == ["cat", "/hello.txt"]


def test_through_docker_registry_and_back(layout: Path, registry: RegistryThread, tmp_path: Path) -> None:
    require("skopeo", "docker-registry")
    reference = DockerRegistry(tmp_path / "docker-registry")
    reference.start()
    try:
        skopeo_copy(f"oci:{layout}:1.0", f"docker://{reference.host}/app/web:1.0")
        skopeo_copy(f"docker://{reference.host}/app/web:1.0", f"docker://{registry.host}/app/web:1.0")
        skopeo_copy(f"docker://{registry.host}/app/web:1.0", f"docker://{reference.host}/app/back:1.0")
        digests = {host: json.loads(run("skopeo", "inspect", "--tls-verify=false", f"docker://{host}/app/{repo}:1.0"))["Digest"]
                   for host, repo in ((reference.host, "web"), (registry.host, "web"), (reference.host, "back"))}
        assert set(digests.values()) == {index_digests(layout)["1.0"]}
        assert set(blob_files(registry.root)) == reference.blob_digests()
        skopeo_copy(f"docker://{reference.host}/app/back:1.0", f"oci:{tmp_path / 'final'}:1.0")
        assert index_digests(tmp_path / "final") == index_digests(layout)
    finally:
        reference.stop()
