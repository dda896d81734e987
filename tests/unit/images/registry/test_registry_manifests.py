"""Pushed manifests: which documents are accepted, and what they refer to."""

from __future__ import annotations

import json
from typing import Any

import pytest

from kubelite.images.oci import DOCKER_LIST, DOCKER_MANIFEST, OCI_INDEX, OCI_MANIFEST
from kubelite.images.registry.manifests import MANIFEST_MAX, check_manifest, media_type_of
from kubelite.images.registry.rules import RegistryError

CONFIG = "sha256:" + "c" * 64
LAYER = "sha256:" + "1" * 64
CHILD = "sha256:" + "2" * 64
SUBJECT = "sha256:" + "5" * 64


def image(media_type: str | None = OCI_MANIFEST, **extra: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {"schemaVersion": 2,
                           "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": CONFIG, "size": 10},
                           "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": LAYER, "size": 20}]}
    if media_type:
        doc["mediaType"] = media_type
    return {**doc, **extra}


def index(media_type: str | None = OCI_INDEX) -> dict[str, Any]:
    doc: dict[str, Any] = {"schemaVersion": 2, "manifests": [
        {"mediaType": OCI_MANIFEST, "digest": CHILD, "size": 30, "platform": {"os": "linux", "architecture": "amd64"}}]}
    if media_type:
        doc["mediaType"] = media_type
    return doc


def check(doc: Any, content_type: str = "") -> Any:
    return check_manifest(json.dumps(doc).encode(), content_type)


def invalid(doc: Any, content_type: str = "", code: str = "MANIFEST_INVALID") -> RegistryError:
    with pytest.raises(RegistryError) as info:
        check(doc, content_type) if not isinstance(doc, bytes) else check_manifest(doc, content_type)
    assert info.value.code == code
    return info.value


def test_image_manifests() -> None:
    for media_type in (OCI_MANIFEST, DOCKER_MANIFEST):
        info = check(image(media_type), media_type)
        assert info.media_type == media_type and info.blobs == (CONFIG, LAYER) and info.manifests == ()
    assert check(image(None), OCI_MANIFEST).media_type == OCI_MANIFEST  # mediaType may be omitted
    assert check(image(None)).media_type == OCI_MANIFEST  # the shape says what it is
    assert check(image(), "application/vnd.oci.image.manifest.v1+json; charset=utf-8").media_type == OCI_MANIFEST
    assert check(image(), "application/octet-stream").media_type == OCI_MANIFEST  # the body's mediaType decides


def test_indexes() -> None:
    for media_type in (OCI_INDEX, DOCKER_LIST):
        info = check(index(media_type), media_type)
        assert info.media_type == media_type and info.manifests == (CHILD,) and info.blobs == ()
    assert check(index(None)).media_type == OCI_INDEX


def test_artifacts_and_referrers() -> None:
    doc = image(artifactType="application/vnd.example.sbom", subject={"mediaType": OCI_MANIFEST, "digest": SUBJECT, "size": 5},
                annotations={"a": "b"})
    info = check(doc, OCI_MANIFEST)
    assert info.subject == SUBJECT
    assert info.referrer("sha256:" + "9" * 64, 77) == {"mediaType": OCI_MANIFEST, "digest": "sha256:" + "9" * 64, "size": 77,
                                                       "artifactType": "application/vnd.example.sbom", "annotations": {"a": "b"}}
    assert check(image()).artifact_type == "application/vnd.oci.image.config.v1+json"  # no artifactType: the config's type
    assert check(index()).artifact_type == ""


def test_foreign_layers_need_not_be_pushed() -> None:
    foreign = {"mediaType": "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip", "digest": "sha256:" + "f" * 64,
               "size": 1, "urls": ["https://example.invalid/layer"]}
    doc = image(DOCKER_MANIFEST)
    doc["layers"].append(foreign)
    assert check(doc, DOCKER_MANIFEST).blobs == (CONFIG, LAYER)


@pytest.mark.parametrize(("doc", "content_type"), [
    (b"not json", OCI_MANIFEST),
    (b"[1, 2]", OCI_MANIFEST),
    ({**image(), "schemaVersion": 1}, OCI_MANIFEST),
    (image(DOCKER_MANIFEST), OCI_MANIFEST),  # mediaType and Content-Type disagree
    (image("application/vnd.docker.distribution.manifest.v1+json"), ""),
    (image(None), "application/vnd.docker.distribution.manifest.v1+prettyjws"),
    (image("text/plain"), ""),
    ({"schemaVersion": 2}, ""),
    ({**image(), "layers": "x"}, OCI_MANIFEST),
    ({**image(), "config": None}, OCI_MANIFEST),
    ({**image(), "config": {"digest": "sha256:short", "size": 1}}, OCI_MANIFEST),
    ({**image(), "config": {"digest": CONFIG, "size": -1}}, OCI_MANIFEST),
    ({**image(), "mediaType": 5}, OCI_MANIFEST),
    ({**index(), "manifests": {}}, OCI_INDEX),
    ({**index(), "manifests": [{"digest": "md5:00", "size": 1}]}, OCI_INDEX),
    ({**image(), "annotations": {"a": 1}}, OCI_MANIFEST),
    ({**image(), "subject": {"digest": "nope", "size": 1}}, OCI_MANIFEST),
])
def test_invalid_manifests(doc: Any, content_type: str) -> None:
    error = invalid(doc, content_type)
    assert error.status == 400 and error.detail


def test_size_limit() -> None:
    doc = image(annotations={"pad": "x" * MANIFEST_MAX})
    error = invalid(doc, OCI_MANIFEST, code="SIZE_INVALID")
    assert error.status == 413


def test_media_type_of() -> None:
    assert media_type_of("Application/JSON; charset=utf-8") == "application/json"
    assert media_type_of("") == ""
