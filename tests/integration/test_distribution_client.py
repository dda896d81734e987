"""The distribution client against registries: Debian's docker-registry (the reference server) for
push/pull round trips, skopeo-pushed OCI and Docker schema 2 images and a multi-platform index;
a fake registry of our own for basic and bearer-token auth, corrupted bytes and broken transfers.
No root needed; every server listens on 127.0.0.1 and is stopped by the test."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest

from kubelite.images.blobs import DigestMismatch
from kubelite.images.distribution import AuthError, NotFound, RegistryClient, TransferBroken, pull, push
from kubelite.images.distribution.credentials import Credential, Keyring, encode_auth
from kubelite.images.distribution.progress import LineProgress
from kubelite.images.distribution.pull import parse_platform, pull_image
from kubelite.images.oci import (
    ANNOTATION_REF_NAME,
    DOCKER_MANIFEST,
    OCI_INDEX,
    OCI_LAYOUT_VERSION,
    OCI_MANIFEST,
    Descriptor,
    ImageFormatError,
    canonical_json,
    digest_of,
    host_platform,
)
from kubelite.images.store import ImageStore
from kubelite.images.testimages import (
    HTTPD_REF,
    INDEX_HTML,
    BuiltImage,
    LayerBuilder,
    build_image,
    ensure_test_images,
)
from tests.integration.distribution_fakes import FakeRegistry, docker_registry  # noqa: F401 - the registry fixture
from tests.integration.registry_helpers import DockerRegistry, require, run


@pytest.fixture
def source(tmp_path: Path) -> ImageStore:
    store = ImageStore(tmp_path / "source")
    ensure_test_images(store)
    return store


def nothing_staged(store: ImageStore) -> bool:
    return not store.blobs.ingest_dir.exists() or not any(store.blobs.ingest_dir.iterdir())


async def test_push_and_pull_through_docker_registry(registry: DockerRegistry, source: ImageStore,
                                                     tmp_path: Path) -> None:
    name = f"{registry.host}/kl/httpd:1.0"
    source.tag(HTTPD_REF, name)
    out = io.StringIO()
    pushed = await push(source, name, progress=LineProgress(out))
    original = source.get(name)
    assert pushed.digest == original.digest and pushed.media_type == OCI_MANIFEST
    assert out.getvalue().count(": Pushed") == 2 and "The push refers to repository" in out.getvalue()
    assert source.content(source.find(name).entry.target).blobs() <= registry.blob_digests() | {pushed.digest}

    out = io.StringIO()
    again = await push(source, name, progress=LineProgress(out))
    assert again.uploaded == 0 and out.getvalue().count("Layer already exists") == 2
    source.tag(name, f"{registry.host}/kl/copy:1")
    out = io.StringIO()
    copied = await push(source, f"{registry.host}/kl/copy:1", progress=LineProgress(out))
    assert copied.uploaded == 0 and out.getvalue().count("Mounted from kl/httpd") == 2

    fresh = ImageStore(tmp_path / "fresh")
    result = await pull(fresh, name)
    assert (result.digest, result.record.id, result.up_to_date) == (original.digest, original.id, False)
    assert result.downloaded == original.size
    assert (result.record.layer_dirs[-1] / "www/index.html").read_text() == INDEX_HTML
    assert (await pull(fresh, name)).up_to_date
    by_digest = await pull(ImageStore(tmp_path / "by-digest"), f"{registry.host}/kl/copy@{original.digest}")
    assert by_digest.name == f"{registry.host}/kl/copy@{original.digest}" and by_digest.record.id == original.id


@pytest.mark.parametrize(("fmt", "media_type"), [("oci", OCI_MANIFEST), ("v2s2", DOCKER_MANIFEST)])
async def test_pull_what_skopeo_pushed(registry: DockerRegistry, source: ImageStore, tmp_path: Path,
                                       fmt: str, media_type: str) -> None:
    require("skopeo")
    remote = f"{registry.host}/sk/httpd:{fmt}"
    run("skopeo", "copy", "-q", "--dest-tls-verify=false", "--format", fmt, f"oci:{source.root}:{HTTPD_REF}",
        f"docker://{remote}")
    info = json.loads(run("skopeo", "inspect", "--tls-verify=false", f"docker://{remote}"))
    store = ImageStore(tmp_path / "pulled")
    result = await pull(store, remote)
    assert result.digest == info["Digest"]
    assert store.inspect(remote)["Manifest"]["mediaType"] == media_type
    assert (result.record.layer_dirs[-1] / "www/index.html").read_text() == INDEX_HTML


def for_arch(arch: str, text: str) -> BuiltImage:
    """A one-layer image whose config says `arch` (its layer says so too)."""
    built = build_image([LayerBuilder().file("arch", text).build()], cmd=["cat", "/arch"])
    config = {**built.config, "architecture": arch}
    config_bytes = canonical_json(config)
    manifest = json.loads(built.blobs[built.manifest.digest])
    manifest["config"] = {**manifest["config"], "digest": digest_of(config_bytes), "size": len(config_bytes)}
    manifest_bytes = canonical_json(manifest)
    blobs = {d: b for d, b in built.blobs.items() if d not in (built.manifest.digest, digest_of(canonical_json(built.config)))}
    blobs |= {digest_of(config_bytes): config_bytes, digest_of(manifest_bytes): manifest_bytes}
    return BuiltImage(Descriptor(OCI_MANIFEST, digest_of(manifest_bytes), len(manifest_bytes)), config, blobs)


def multi_platform_layout(dest: Path) -> tuple[str, dict[str, str]]:
    """An OCI layout whose `multi` is an index of an amd64 and an arm64 image; returns the index
    digest and each platform's manifest digest."""
    images = {"amd64": for_arch("amd64", "amd64\n"), "arm64": for_arch("arm64", "arm64\n")}
    index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
        {**img.manifest.to_json(), "platform": {"os": "linux", "architecture": arch}} for arch, img in images.items()]}
    index_bytes = canonical_json(index)
    blob_dir = dest / "blobs" / "sha256"
    blob_dir.mkdir(parents=True)
    for img in images.values():
        for digest, data in img.blobs.items():
            (blob_dir / digest.removeprefix("sha256:")).write_bytes(data)
    (blob_dir / digest_of(index_bytes).removeprefix("sha256:")).write_bytes(index_bytes)
    (dest / "oci-layout").write_text(json.dumps({"imageLayoutVersion": OCI_LAYOUT_VERSION}))
    top = {"mediaType": OCI_INDEX, "digest": digest_of(index_bytes), "size": len(index_bytes),
           "annotations": {ANNOTATION_REF_NAME: "multi"}}
    (dest / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [top]}))
    return digest_of(index_bytes), {arch: img.manifest.digest for arch, img in images.items()}


async def test_a_multi_platform_index_gives_the_node_its_platform(registry: DockerRegistry, tmp_path: Path) -> None:
    require("skopeo")
    index_digest, manifests = multi_platform_layout(tmp_path / "layout")
    remote = f"{registry.host}/mp/app:1"
    run("skopeo", "copy", "-q", "--all", "--dest-tls-verify=false", f"oci:{tmp_path / 'layout'}:multi",
        f"docker://{remote}")

    native = await pull(ImageStore(tmp_path / "native"), remote)
    host_arch = host_platform()["architecture"]
    assert native.digest == index_digest  # the index stays the image, as Docker reports it
    assert native.record.config["architecture"] == host_arch
    assert (native.record.layer_dirs[0] / "arch").read_text() == f"{host_arch}\n"

    other = await pull(ImageStore(tmp_path / "arm"), remote, platform=parse_platform("linux/arm64"))
    assert other.digest == manifests["arm64"] and other.record.config["architecture"] == "arm64"

    # pushing what a pull keeps (the index, one platform's content) sends that platform's manifest, as
    # Docker does; once every platform is in the store, the whole index goes
    store = ImageStore(tmp_path / "native")
    store.tag(remote, f"{registry.host}/mp/one:1")
    assert (await push(store, f"{registry.host}/mp/one:1")).digest == manifests[host_arch]
    await pull(store, f"{registry.host}/mp/app@{manifests['arm64']}")
    store.tag(remote, f"{registry.host}/mp/all:1")
    whole = await push(store, f"{registry.host}/mp/all:1")
    assert (whole.digest, whole.media_type) == (index_digest, OCI_INDEX)
    again = await pull(ImageStore(tmp_path / "again"), f"{registry.host}/mp/all:1", platform=parse_platform("linux/arm64"))
    assert again.digest == manifests["arm64"]

    untouched = ImageStore(tmp_path / "none")
    with pytest.raises(ImageFormatError, match="no manifest for platform linux/riscv64"):
        await pull(untouched, remote, platform=parse_platform("linux/riscv64"))
    assert untouched.images() == [] and untouched.blobs.digests() == set()


async def test_not_found_and_unknown_local_names(registry: DockerRegistry, source: ImageStore) -> None:
    with pytest.raises(NotFound, match=f"^{registry.host}/kl/nosuch:1: not found$"):
        await pull(source, f"{registry.host}/kl/nosuch:1")
    with pytest.raises(Exception, match="An image does not exist locally with the tag"):
        await push(source, f"{registry.host}/kl/never-tagged:1")


# -- auth and faults, against the fake registry ---------------------------------------------------------

def seeded(fake: FakeRegistry, repo: str = "team/app", tag: str = "1.0") -> BuiltImage:
    built = build_image([LayerBuilder().file("hello", "world\n").build()], cmd=["cat", "/hello"])
    fake.put_blobs({d: b for d, b in built.blobs.items() if d != built.manifest.digest})
    fake.put_manifest(repo, tag, OCI_MANIFEST, built.blobs[built.manifest.digest])
    return built


def keyring_for(host: str, user: str, password: str) -> Keyring:
    return Keyring.from_docker_config({"auths": {host: {"auth": encode_auth(user, password)}}}, source="test")


@pytest.mark.parametrize("scheme", ["bearer", "basic"])
async def test_pull_and_push_with_credentials(tmp_path: Path, scheme: str) -> None:
    fake = FakeRegistry(auth=scheme, users={"me": "pw"})
    built = seeded(fake)
    async with fake.serve() as host:
        store = ImageStore(tmp_path / "store")
        result = await pull(store, f"{host}/team/app:1.0", keyring=keyring_for(host, "me", "pw"))
        assert result.digest == built.manifest.digest
        if scheme == "bearer":
            assert fake.requests["token"] >= 1
        store.tag(f"{host}/team/app:1.0", f"{host}/team/copy:2")
        pushed = await push(store, f"{host}/team/copy:2", keyring=keyring_for(host, "me", "pw"))
        assert fake.manifests[("team/copy", "2")] == (OCI_MANIFEST, built.blobs[built.manifest.digest])
        assert pushed.digest == built.manifest.digest

        with pytest.raises(AuthError, match="pull access denied"):
            await pull(ImageStore(tmp_path / "anon"), f"{host}/team/app:1.0")
        with pytest.raises(AuthError, match="pull access denied"):
            await pull(ImageStore(tmp_path / "wrong"), f"{host}/team/app:1.0", keyring=keyring_for(host, "me", "no"))
        async with RegistryClient() as client:
            await client.login(host, Credential("me", "pw"))
            with pytest.raises(AuthError):
                await client.login(host, Credential("me", "wrong"))


async def test_bearer_tokens_are_reused_within_a_client(tmp_path: Path) -> None:
    fake = FakeRegistry(auth="bearer", users={"me": "pw"})
    seeded(fake)
    async with fake.serve() as host, RegistryClient(keyring=keyring_for(host, "me", "pw")) as client:
        await pull_image(client, ImageStore(tmp_path / "a"), f"{host}/team/app:1.0")
        await pull_image(client, ImageStore(tmp_path / "b"), f"{host}/team/app:1.0")
    assert fake.requests["token"] == 1  # one token for the repository's pull scope, kept for its lifetime


@pytest.mark.parametrize("fault", ["corrupt", "cut"])
async def test_bad_transfers_leave_nothing_in_the_store(tmp_path: Path, fault: str) -> None:
    fake = FakeRegistry()
    built = seeded(fake)
    manifest: dict[str, Any] = json.loads(built.blobs[built.manifest.digest])
    layer = manifest["layers"][0]["digest"]
    getattr(fake, fault).add(layer)
    store = ImageStore(tmp_path / "store")
    async with fake.serve() as host:
        with pytest.raises(DigestMismatch if fault == "corrupt" else TransferBroken):
            await pull(store, f"{host}/team/app:1.0")
    assert store.images() == [] and store.blobs.digests() == set() and nothing_staged(store)
    if fault == "cut":
        assert fake.requests["GET blob"] == 4  # the config once, the layer three times
