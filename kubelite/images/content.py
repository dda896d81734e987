"""From an image's top-level descriptor to everything it is made of: the platform manifest, the
config, the layers and their diff IDs.

`resolve` walks the documents with a caller-supplied reader, so the same code serves images in the
store (read as is) and images being imported (`stage_image`: every blob is copied into the
ingest and verified against its descriptor before it is parsed or unpacked).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, BinaryIO

from kubelite.images.blobs import Ingest
from kubelite.images.oci import (
    Descriptor,
    ImageFormatError,
    config_diff_ids,
    document_kind,
    load_json,
    parse_index,
    parse_manifest,
    pick_platform,
)

OpenBlob = Callable[[str], BinaryIO]


@dataclass(frozen=True)
class ImageContent:
    top: Descriptor  # what a name points at: a manifest, or an index of manifests
    manifest: Descriptor  # this platform's manifest (the top itself for a single manifest)
    config_digest: str  # the image ID
    config_size: int
    config: dict[str, Any]
    layers: tuple[Descriptor, ...]
    diff_ids: tuple[str, ...]

    @property
    def size(self) -> int:
        return self.config_size + sum(layer.size for layer in self.layers)

    def blobs(self) -> set[str]:
        """The digests this image needs (index, manifest, config, layers)."""
        return {self.top.digest, self.manifest.digest, self.config_digest, *(x.digest for x in self.layers)}


def resolve(top: Descriptor, read: Callable[[Descriptor], bytes]) -> ImageContent:
    doc = load_json(read(top), f"document {top.digest}")
    manifest_desc = top
    if document_kind(doc, top.media_type) == "index":
        manifest_desc = pick_platform(parse_index(doc))
        doc = load_json(read(manifest_desc), f"manifest {manifest_desc.digest}")
        if document_kind(doc, manifest_desc.media_type) != "manifest":
            raise ImageFormatError(f"{manifest_desc.digest}: nested indexes are not supported")
    manifest = parse_manifest(doc)
    config = load_json(read(manifest.config), f"image config {manifest.config.digest}")
    diff_ids = config_diff_ids(config)
    if len(diff_ids) != len(manifest.layers):
        raise ImageFormatError(f"manifest {manifest_desc.digest} has {len(manifest.layers)} layers "
                               f"but its config lists {len(diff_ids)} diff IDs")
    return ImageContent(top, manifest_desc, manifest.config.digest, manifest.config.size, config,
                        manifest.layers, tuple(diff_ids))


def stage_image(top: Descriptor, ingest: Ingest, open_blob: OpenBlob) -> ImageContent:
    """Copy one image's blobs into `ingest`, each verified (digest and size) before it is used."""
    def read(desc: Descriptor) -> bytes:
        _stage(desc, ingest, open_blob)
        return ingest.path(desc.digest).read_bytes()

    content = resolve(top, read)
    for layer in content.layers:
        _stage(layer, ingest, open_blob)
    return content


def _stage(desc: Descriptor, ingest: Ingest, open_blob: OpenBlob) -> None:
    if ingest.has(desc.digest):
        return
    try:
        src = open_blob(desc.digest)
    except (FileNotFoundError, KeyError):
        raise ImageFormatError(f"blob {desc.digest} ({desc.media_type or 'no media type'}) is missing") from None
    with src:
        ingest.add_stream(src, digest=desc.digest, size=desc.size)
