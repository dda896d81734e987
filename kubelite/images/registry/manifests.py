"""What a pushed manifest is and what it refers to: pure checks over its bytes and Content-Type.

`check_manifest` accepts OCI image manifests and indexes and Docker schema 2 manifests and
manifest lists (artifacts are OCI manifests with any config type). It returns the media type to
store (served back as the Content-Type), the blobs the repository must hold (config, layers) and
the manifests an index lists, so the handler can refuse a manifest whose content is missing with
MANIFEST_BLOB_UNKNOWN, and the `subject` with the descriptor the referrers API lists.
The bytes themselves are stored as pushed: the digest is over exactly what the client sent.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from kubelite.images.oci import (
    INDEX_TYPES,
    MANIFEST_TYPES,
    OCI_INDEX,
    OCI_MANIFEST,
    Descriptor,
    ImageFormatError,
    load_json,
)
from kubelite.images.registry.rules import RegistryError, parse_digest

MANIFEST_MAX = 4 << 20  # the spec asks registries to take at least 4 MB; larger gets 413
SCHEMA1_TYPES = frozenset({"application/vnd.docker.distribution.manifest.v1+json",
                           "application/vnd.docker.distribution.manifest.v1+prettyjws"})


@dataclass(frozen=True)
class ManifestInfo:
    media_type: str
    blobs: tuple[str, ...] = ()  # config and layers: must be blobs of the repository
    manifests: tuple[str, ...] = ()  # an index's entries: must be manifests of the repository
    subject: str = ""  # the digest this manifest refers to (referrers API), "" when none
    artifact_type: str = ""
    annotations: dict[str, str] = field(default_factory=dict)

    def referrer(self, digest: str, size: int) -> dict[str, Any]:
        """This manifest as an entry of its subject's referrers index."""
        entry: dict[str, Any] = {"mediaType": self.media_type, "digest": digest, "size": size}
        if self.artifact_type:
            entry["artifactType"] = self.artifact_type
        if self.annotations:
            entry["annotations"] = self.annotations
        return entry


def media_type_of(content_type: str) -> str:
    """The bare media type of a Content-Type header (parameters are ignored, as the spec says)."""
    return content_type.split(";", 1)[0].strip().lower()


def check_manifest(data: bytes, content_type: str) -> ManifestInfo:
    if len(data) > MANIFEST_MAX:
        raise RegistryError("SIZE_INVALID", {"size": len(data), "limit": MANIFEST_MAX}, status=413,
                            message=f"manifest is {len(data)} bytes, the limit is {MANIFEST_MAX}")
    try:
        doc = load_json(data, "manifest")
    except ImageFormatError as e:
        raise RegistryError("MANIFEST_INVALID", str(e)) from None
    media_type = _media_type(doc, media_type_of(content_type))
    if doc.get("schemaVersion") != 2:
        raise RegistryError("MANIFEST_INVALID", f"schemaVersion must be 2, not {doc.get('schemaVersion')!r}")
    try:
        if media_type in INDEX_TYPES:
            return _index(doc, media_type)
        return _manifest(doc, media_type)
    except ImageFormatError as e:
        raise RegistryError("MANIFEST_INVALID", str(e)) from None


def _media_type(doc: dict[str, Any], content_type: str) -> str:
    declared = doc.get("mediaType")
    if declared is not None and not isinstance(declared, str):
        raise RegistryError("MANIFEST_INVALID", "mediaType must be a string")
    known = MANIFEST_TYPES | INDEX_TYPES
    if content_type in SCHEMA1_TYPES or declared in SCHEMA1_TYPES:
        raise RegistryError("MANIFEST_INVALID", "Docker schema 1 manifests are not supported: push schema 2 or OCI")
    if declared and content_type in known and declared != content_type:
        raise RegistryError("MANIFEST_INVALID",
                            f"mediaType {declared} does not match the Content-Type {content_type}")
    media_type = declared or (content_type if content_type in known else "")
    if not media_type:  # OCI lets mediaType be omitted: the shape says which document it is
        media_type = OCI_INDEX if "manifests" in doc else OCI_MANIFEST if "config" in doc else ""
    if media_type not in known:
        raise RegistryError("MANIFEST_INVALID", f"unsupported manifest media type {media_type or content_type or '(none)'}; "
                            f"supported: {', '.join(sorted(known))}")
    return media_type


def _manifest(doc: dict[str, Any], media_type: str) -> ManifestInfo:
    config = _descriptor(doc.get("config"), "config")
    layers = doc.get("layers")
    if not isinstance(layers, list):
        raise RegistryError("MANIFEST_INVALID", "a manifest needs a layers list")
    blobs = [config.digest]
    for i, raw in enumerate(layers):
        layer = _descriptor(raw, f"layers[{i}]")
        if not _foreign(raw):
            blobs.append(layer.digest)
    artifact_type = doc.get("artifactType") or config.media_type
    return ManifestInfo(media_type, blobs=tuple(blobs), subject=_subject(doc),
                        artifact_type=str(artifact_type), annotations=_annotations(doc))


def _index(doc: dict[str, Any], media_type: str) -> ManifestInfo:
    entries = doc.get("manifests")
    if not isinstance(entries, list):
        raise RegistryError("MANIFEST_INVALID", "an index needs a manifests list")
    children = tuple(_descriptor(raw, f"manifests[{i}]").digest for i, raw in enumerate(entries))
    return ManifestInfo(media_type, manifests=children, subject=_subject(doc),
                        artifact_type=str(doc.get("artifactType") or ""), annotations=_annotations(doc))


def _descriptor(raw: Any, where: str) -> Descriptor:
    if raw is None:
        raise RegistryError("MANIFEST_INVALID", f"{where}: missing descriptor")
    try:
        descriptor = Descriptor.from_json(raw)
    except ImageFormatError as e:
        raise RegistryError("MANIFEST_INVALID", f"{where}: {e}") from None
    try:
        parse_digest(descriptor.digest)
    except RegistryError as e:
        raise RegistryError("MANIFEST_INVALID", f"{where}: {e.message}") from None
    return descriptor


def _foreign(raw: dict[str, Any]) -> bool:
    """Foreign (non-distributable) layers live at their `urls`, not in the registry."""
    media_type = str(raw.get("mediaType", ""))
    return bool(raw.get("urls")) and ("foreign" in media_type or "nondistributable" in media_type)


def _subject(doc: dict[str, Any]) -> str:
    if doc.get("subject") is None:
        return ""
    return _descriptor(doc["subject"], "subject").digest


def _annotations(doc: dict[str, Any]) -> dict[str, str]:
    annotations = doc.get("annotations") or {}
    if not isinstance(annotations, dict) or not all(isinstance(v, str) for v in annotations.values()):
        raise RegistryError("MANIFEST_INVALID", "annotations must map strings to strings")
    return dict(annotations)
