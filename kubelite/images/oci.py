"""OCI and Docker image documents: media types, descriptors, manifests, indexes, platform choice.

Pure functions over parsed JSON. A top-level descriptor points at either a manifest (config +
layers) or an index (one manifest per platform); `pick_platform` chooses this host's entry from an
index the way containerd's default platform matcher does (os/architecture, then variant).
Docker schema 2 documents are accepted wherever their OCI equivalents are.
"""

from __future__ import annotations

import hashlib
import json
import platform
from dataclasses import dataclass
from typing import Any

OCI_LAYOUT_VERSION = "1.0.0"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"

INDEX_TYPES = frozenset({OCI_INDEX, DOCKER_LIST})
MANIFEST_TYPES = frozenset({OCI_MANIFEST, DOCKER_MANIFEST})

ANNOTATION_REF_NAME = "org.opencontainers.image.ref.name"
ANNOTATION_IMAGE_NAME = "io.containerd.image.name"  # containerd/buildkit: the full reference
ANNOTATION_CREATED = "org.opencontainers.image.created"

_ARCH = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "ppc64le": "ppc64le", "s390x": "s390x"}


class ImageFormatError(Exception):
    """A manifest, index, config or layout that is not what it claims to be."""


@dataclass(frozen=True)
class Descriptor:
    media_type: str
    digest: str
    size: int
    annotations: tuple[tuple[str, str], ...] = ()
    platform: tuple[tuple[str, str], ...] = ()

    @classmethod
    def from_json(cls, raw: Any) -> Descriptor:
        if not isinstance(raw, dict) or not isinstance(raw.get("digest"), str):
            raise ImageFormatError(f"not a descriptor: {raw!r:.200}")
        size = raw.get("size")
        if not isinstance(size, int) or size < 0:
            raise ImageFormatError(f"descriptor {raw['digest']} has no valid size")
        return cls(str(raw.get("mediaType", "")), raw["digest"], size,
                   tuple(sorted((raw.get("annotations") or {}).items())),
                   tuple(sorted((k, str(v)) for k, v in (raw.get("platform") or {}).items())))

    def annotation(self, key: str) -> str:
        return dict(self.annotations).get(key, "")

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"mediaType": self.media_type, "digest": self.digest, "size": self.size}
        if self.annotations:
            out["annotations"] = dict(self.annotations)
        if self.platform:
            out["platform"] = dict(self.platform)
        return out


@dataclass(frozen=True)
class Manifest:
    config: Descriptor
    layers: tuple[Descriptor, ...]


def host_platform() -> dict[str, str]:
    machine = platform.machine()
    return {"os": "linux", "architecture": _ARCH.get(machine, machine or "amd64")}


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def canonical_json(doc: Any) -> bytes:
    """Stable bytes for documents we write (so re-importing the same content yields the same digest)."""
    return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()


def load_json(data: bytes, what: str) -> dict[str, Any]:
    try:
        doc = json.loads(data)
    except ValueError as e:
        raise ImageFormatError(f"{what} is not JSON: {e}") from None
    if not isinstance(doc, dict):
        raise ImageFormatError(f"{what} is not a JSON object")
    return doc


def document_kind(doc: dict[str, Any], media_type: str = "") -> str:
    """"index" or "manifest", from the descriptor's media type or the document itself."""
    declared = media_type or str(doc.get("mediaType", ""))
    if declared in INDEX_TYPES or (not declared and "manifests" in doc):
        return "index"
    if declared in MANIFEST_TYPES or (not declared and "config" in doc and "layers" in doc):
        return "manifest"
    raise ImageFormatError(f"unsupported document type {declared or '(none)'}")


def parse_manifest(doc: dict[str, Any]) -> Manifest:
    if doc.get("schemaVersion") != 2:
        raise ImageFormatError(f"unsupported manifest schemaVersion {doc.get('schemaVersion')!r}")
    layers = doc.get("layers")
    if not isinstance(layers, list):
        raise ImageFormatError("manifest has no layers list")
    return Manifest(Descriptor.from_json(doc.get("config")), tuple(Descriptor.from_json(x) for x in layers))


def parse_index(doc: dict[str, Any]) -> list[Descriptor]:
    manifests = doc.get("manifests")
    if not isinstance(manifests, list):
        raise ImageFormatError("index has no manifests list")
    return [Descriptor.from_json(x) for x in manifests]


def pick_platform(entries: list[Descriptor], want: dict[str, str] | None = None) -> Descriptor:
    """This platform's manifest from an index; an entry without a platform matches anything."""
    want = want or host_platform()
    best: tuple[int, Descriptor] | None = None
    for entry in entries:
        score = _platform_score(dict(entry.platform), want)
        if score >= 0 and (best is None or score > best[0]):
            best = (score, entry)
    if best is None:
        have = ", ".join(_platform_text(dict(e.platform)) for e in entries) or "none"
        raise ImageFormatError(f"no manifest for platform {_platform_text(want)} (index has: {have})")
    return best[1]


def _platform_score(have: dict[str, str], want: dict[str, str]) -> int:
    if not have:
        return 0
    if have.get("os") != want["os"] or have.get("architecture") != want["architecture"]:
        return -1
    # Annotation-only entries (attestations) carry "unknown/unknown" and never match above.
    return 2 if have.get("variant", "") == want.get("variant", "") else 1


def _platform_text(p: dict[str, str]) -> str:
    return "/".join(x for x in (p.get("os", "?"), p.get("architecture", "?"), p.get("variant", "")) if x)


def config_diff_ids(config: dict[str, Any]) -> list[str]:
    rootfs = config.get("rootfs")
    diff_ids = rootfs.get("diff_ids") if isinstance(rootfs, dict) else None
    if not isinstance(diff_ids, list) or not all(isinstance(d, str) for d in diff_ids):
        raise ImageFormatError("image config has no rootfs.diff_ids")
    return list(diff_ids)
