"""The registry's file layout: links per repository, tags, referrers, catalog, publishing uploads,
and sweeping abandoned upload sessions."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from kubelite.images.oci import OCI_MANIFEST
from kubelite.images.registry.manifests import check_manifest
from kubelite.images.registry.rules import Digest, parse_digest
from kubelite.images.registry.storage import RegistryStorage
from kubelite.images.registry.uploads import Uploads


def digest_of(data: bytes) -> Digest:
    return Digest("sha256", hashlib.sha256(data).hexdigest())


def stored(tmp_path: Path) -> RegistryStorage:
    storage = RegistryStorage(tmp_path)
    storage.ensure()
    return storage


def add_blob(storage: RegistryStorage, name: str, data: bytes) -> Digest:
    digest = digest_of(data)
    upload = storage.uploads / f"u-{digest.hex[:8]}"
    upload.write_bytes(data)
    storage.adopt(upload, digest)
    storage.link_blob(name, digest)
    assert not upload.exists()
    return digest


def manifest_bytes(config: Digest, **extra: object) -> bytes:
    return json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                       "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": str(config), "size": 2},
                       "layers": [], **extra}).encode()


def test_blobs_are_seen_only_where_linked(tmp_path: Path) -> None:
    storage = stored(tmp_path)
    digest = add_blob(storage, "a/one", b"{}")
    assert storage.linked_blob("a/one", digest) == tmp_path / "blobs/sha256" / digest.hex
    assert storage.linked_blob("a/two", digest) is None
    # The same content again: the existing blob stays, the new upload file goes.
    again = storage.uploads / "again"
    again.write_bytes(b"{}")
    storage.adopt(again, digest)
    assert not again.exists() and (tmp_path / "blobs/sha256" / digest.hex).read_bytes() == b"{}"
    assert storage.unlink_blob("a/one", digest) and not storage.unlink_blob("a/one", digest)
    assert storage.linked_blob("a/one", digest) is None and (tmp_path / "blobs/sha256" / digest.hex).exists()


def test_manifests_tags_referrers_and_catalog(tmp_path: Path) -> None:
    storage = stored(tmp_path)
    config = add_blob(storage, "app", b"{}")
    data = manifest_bytes(config)
    info = check_manifest(data, OCI_MANIFEST)
    assert storage.missing("app", info) == [] and storage.missing("other", info) == [str(config)]
    digest = digest_of(data)
    storage.put_manifest("app", digest, data, info, ["1.0", "latest"])
    assert storage.resolve("app", "1.0") == digest and storage.resolve("app", "2.0") is None
    assert storage.manifest("app", digest) == (OCI_MANIFEST, data)
    assert storage.linked_blob("app", digest) is not None  # a manifest is a blob of its repository too

    sbom = manifest_bytes(config, subject={"mediaType": OCI_MANIFEST, "digest": str(digest), "size": len(data)})
    sbom_digest = digest_of(sbom)
    storage.put_manifest("app", sbom_digest, sbom, check_manifest(sbom, OCI_MANIFEST), [])
    assert [r["digest"] for r in storage.referrers("app", digest)] == [str(sbom_digest)]

    storage.put_manifest("app/sub", digest, data, info, ["x"])  # a repository below another one
    storage.link_blob("only/blobs", config)  # no manifest: not in the catalog
    assert storage.catalog() == ["app", "app/sub"]
    assert storage.tags("app") == ["1.0", "latest"] and storage.tags("nope") is None

    assert storage.delete_manifest("app", sbom_digest)
    assert storage.referrers("app", digest) == []
    assert storage.delete_tag("app", "latest") and not storage.delete_tag("app", "latest")
    assert storage.delete_manifest("app", digest) and not storage.delete_manifest("app", digest)
    assert storage.tags("app") == [] and storage.manifest("app", digest) is None
    assert storage.resolve("app/sub", "x") == digest  # other repositories keep theirs


def test_tag_files_hold_digests(tmp_path: Path) -> None:
    storage = stored(tmp_path)
    config = add_blob(storage, "t", b"{}")
    data = manifest_bytes(config)
    storage.put_manifest("t", digest_of(data), data, check_manifest(data, OCI_MANIFEST), ["v1"])
    assert parse_digest((tmp_path / "repositories/t/_tags/v1").read_text()) == digest_of(data)


def test_purge_stale_uploads(tmp_path: Path) -> None:
    storage = stored(tmp_path)
    uploads = Uploads(storage)
    for name, age in (("old", 8 * 24 * 3600), ("new", 60)):
        directory = storage.uploads / name
        directory.mkdir()
        (directory / "data").write_bytes(b"x")
        (directory / "repository").write_text("r")
        then = 1_000_000_000 - age
        for path in (directory / "data", directory / "repository", directory):
            os.utime(path, (then, then))
    assert uploads.purge_stale(now=1_000_000_000) == 1
    assert sorted(p.name for p in storage.uploads.iterdir()) == ["new"]
