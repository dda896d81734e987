"""Images in and out of the store: OCI image layouts (a directory or a tar of one), `docker save`
tarballs, and writing `docker save` tarballs.

Readers stage every blob into the store's ingest (verified) and return the images with the names
they should get; the store publishes them. A docker-archive image becomes an OCI manifest we
write ourselves (canonical JSON, so loading the same archive twice gives the same digest): config
as stored, layers as found (a tarball, compressed or not); the config file's digest is the image
ID, and each layer's uncompressed digest must be its diff ID (checked on staging for plain tars,
on unpacking for compressed ones). `write_docker_archive` emits `manifest.json`, `<id>.json`
configs and `<diffid>/layer.tar` (uncompressed), which `docker load`, skopeo and umoci read.
"""

from __future__ import annotations

import contextlib
import io
import json
import shutil
import tarfile
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any, BinaryIO, Protocol

from kubelite.images.api import InvalidImageName
from kubelite.images.blobs import DigestMismatch, Ingest, hex_of
from kubelite.images.content import ImageContent, stage_image
from kubelite.images.layers import LayerError, clean_name
from kubelite.images.oci import (
    ANNOTATION_IMAGE_NAME,
    ANNOTATION_REF_NAME,
    OCI_CONFIG,
    OCI_LAYER,
    OCI_LAYER_GZIP,
    OCI_LAYOUT_VERSION,
    OCI_MANIFEST,
    Descriptor,
    ImageFormatError,
    canonical_json,
    config_diff_ids,
    load_json,
    parse_index,
)
from kubelite.images.reference import parse
from kubelite.images.snapshots import open_layer

Named = tuple[ImageContent, list[str]]  # an image and the names it gets
_COMPRESSED = {b"\x1f\x8b": OCI_LAYER_GZIP, b"\x28\xb5\x2f\xfd": OCI_LAYER + "+zstd"}


class Files(Protocol):
    def open(self, name: str) -> IO[bytes]: ...
    def exists(self, name: str) -> bool: ...


class DirFiles:
    def __init__(self, root: Path) -> None:
        self.root = root

    def open(self, name: str) -> IO[bytes]:
        return open(self.root / _safe(name), "rb")

    def exists(self, name: str) -> bool:
        return (self.root / _safe(name)).is_file()


class TarFiles:
    """Members of a tarball by cleaned name (links inside the archive are followed by tarfile)."""

    def __init__(self, archive: tarfile.TarFile) -> None:
        self.archive = archive
        self.members: dict[str, tarfile.TarInfo] = {}
        for m in archive.getmembers():
            with contextlib.suppress(LayerError):  # a name outside the archive can never be asked for
                self.members[clean_name(m.name)] = m

    def open(self, name: str) -> IO[bytes]:
        member = self.members.get(_safe(name))
        data = self.archive.extractfile(member) if member is not None else None
        if data is None:
            raise FileNotFoundError(name)
        return data

    def exists(self, name: str) -> bool:
        member = self.members.get(_safe(name))
        return member is not None and (member.isfile() or member.issym() or member.islnk())


def _safe(name: str) -> str:
    try:
        return clean_name(name)
    except LayerError:
        raise ImageFormatError(f"archive path {name!r} leaves the archive") from None


@contextlib.contextmanager
def open_files(path: Path) -> Iterator[Files]:
    if path.is_dir():
        yield DirFiles(path)
        return
    try:
        archive = tarfile.open(path, "r:*")  # noqa: SIM115 (closed by the with below)
    except (tarfile.TarError, OSError) as e:
        raise ImageFormatError(f"{path}: not a directory or a tar archive: {e}") from None
    with archive:
        yield TarFiles(archive)


def is_oci_layout(files: Files) -> bool:
    return files.exists("oci-layout") and files.exists("index.json")


def _blob_opener(files: Files):  # type: ignore[no-untyped-def]
    def open_blob(digest: str) -> BinaryIO:
        algorithm, _, encoded = digest.partition(":")
        return files.open(f"blobs/{algorithm}/{encoded}")  # type: ignore[return-value]
    return open_blob


# -- OCI layouts -------------------------------------------------------------------------------------

def read_oci_layout(files: Files, ingest: Ingest, *, ref: str | None = None,
                    ref_name: str | None = None) -> list[Named]:
    """The layout's images (only those whose ref.name is `ref_name`, if given), named by
    `layout_names`."""
    if not is_oci_layout(files):
        raise ImageFormatError("not an OCI image layout (no oci-layout or index.json)")
    with files.open("oci-layout") as f:
        version = load_json(f.read(), "oci-layout").get("imageLayoutVersion")
    if version != OCI_LAYOUT_VERSION:
        raise ImageFormatError(f"unsupported OCI layout version {version!r}")
    with files.open("index.json") as f:
        tops = parse_index(load_json(f.read(), "index.json"))
    if ref_name is not None:
        tops = [d for d in tops if d.annotation(ANNOTATION_REF_NAME) == ref_name]
        if not tops:
            raise ImageFormatError(f"no image named {ref_name!r} in the layout")
    if not tops:
        raise ImageFormatError("the layout's index.json lists no images")
    names = layout_names(tops, ref)
    opener = _blob_opener(files)
    return [(stage_image(_plain(top), ingest, opener), n) for top, n in zip(tops, names, strict=True)]


def layout_names(tops: list[Descriptor], ref: str | None) -> list[list[str]]:
    """Names for a layout's images (pure).

    With `ref`: a tagged/digested `ref` names the one image; a bare repository gets each image's
    tag from its ref.name annotation (containerd's --base-name), `latest` if it has none. Without:
    the full reference from `io.containerd.image.name`, or a ref.name that is a full reference;
    an image whose ref.name is only a tag ("latest", as umoci and skopeo write) stays untagged.
    """
    if ref is not None:
        parsed = parse(ref)
        if parsed.digest:
            raise InvalidImageName(f"an imported image cannot be named by a digest: {ref}")
        if parsed.tag:
            if len(tops) != 1:
                raise ImageFormatError(f"the layout holds {len(tops)} images; choose one by its ref.name")
            return [[str(parsed)]]
        names = [[f"{parsed.repository}:{_tag_of(t) or 'latest'}"] for t in tops]
        flat = [n[0] for n in names]
        if len(set(flat)) != len(flat):
            raise ImageFormatError(f"several images would be named {flat}; choose one by its ref.name")
        return names
    return [[_full_name(t)] if _full_name(t) else [] for t in tops]


def _tag_of(top: Descriptor) -> str:
    name = top.annotation(ANNOTATION_REF_NAME)
    return name if name and not any(c in name for c in "/:@") else ""


def _full_name(top: Descriptor) -> str:
    for candidate in (top.annotation(ANNOTATION_IMAGE_NAME), top.annotation(ANNOTATION_REF_NAME)):
        if candidate and any(c in candidate for c in "/:@"):
            return str(parse(candidate).with_default_tag())
    return ""


def _plain(desc: Descriptor) -> Descriptor:
    return Descriptor(desc.media_type, desc.digest, desc.size)


# -- docker save archives ----------------------------------------------------------------------------

def read_docker_archive(files: Files, ingest: Ingest) -> list[Named]:
    if not files.exists("manifest.json"):
        raise ImageFormatError("not a docker-archive: no manifest.json (and not an OCI layout)")
    with files.open("manifest.json") as f:
        entries = json.loads(f.read())
    if not isinstance(entries, list) or not entries:
        raise ImageFormatError("manifest.json lists no images")
    return [_read_docker_image(files, ingest, entry) for entry in entries]


def _read_docker_image(files: Files, ingest: Ingest, entry: Any) -> Named:
    if not isinstance(entry, dict) or not isinstance(entry.get("Config"), str):
        raise ImageFormatError(f"manifest.json entry without Config: {entry!r:.200}")
    with files.open(entry["Config"]) as f:
        config_bytes = f.read()
    config_digest = ingest.add_bytes(config_bytes, digest=_digest_in_name(entry["Config"]))
    diff_ids = config_diff_ids(load_json(config_bytes, entry["Config"]))
    layer_paths = entry.get("Layers") or []
    if len(layer_paths) != len(diff_ids):
        raise ImageFormatError(f"{entry['Config']}: {len(layer_paths)} layers but {len(diff_ids)} diff IDs")
    layers = [_stage_layer(files, ingest, p, d) for p, d in zip(layer_paths, diff_ids, strict=True)]
    manifest = {"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                "config": {"mediaType": OCI_CONFIG, "digest": config_digest, "size": len(config_bytes)},
                "layers": [x.to_json() for x in layers]}
    data = canonical_json(manifest)
    top = Descriptor(OCI_MANIFEST, ingest.add_bytes(data), len(data))
    names = [str(parse(tag).with_default_tag()) for tag in entry.get("RepoTags") or []]
    return stage_image(top, ingest, _no_source), names


def _stage_layer(files: Files, ingest: Ingest, path: str, diff_id: str) -> Descriptor:
    with files.open(path) as f:
        digest, size = ingest.add_stream(f)  # type: ignore[arg-type]
    with open(ingest.path(digest), "rb") as f:
        magic = f.read(4)
    media_type = next((t for m, t in _COMPRESSED.items() if magic.startswith(m)), OCI_LAYER)
    if media_type == OCI_LAYER and digest != diff_id:
        raise DigestMismatch(f"layer {path} has digest {digest}, but the config says its diff ID is {diff_id}")
    return Descriptor(media_type, digest, size)


def _digest_in_name(name: str) -> str | None:
    """`<hex>.json` or `blobs/sha256/<hex>`: the name announces the config's digest."""
    stem = name.rsplit("/", 1)[-1].removesuffix(".json")
    return f"sha256:{stem}" if len(stem) == 64 and all(c in "0123456789abcdef" for c in stem) else None


def _no_source(digest: str) -> BinaryIO:
    raise FileNotFoundError(digest)


def write_docker_archive(images: list[Named], blob_path: Callable[[str], Path], out: BinaryIO,
                         *, scratch: Path) -> None:
    """`docker save`: one manifest.json entry per image, RepoTags in Docker's familiar form."""
    manifest, written = [], set()
    with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        for content, names in images:
            config_name = f"{hex_of(content.config_digest)}.json"
            if config_name not in written:
                _add_file(tar, config_name, blob_path(content.config_digest))
                written.add(config_name)
            layer_names = []
            for layer, diff_id in zip(content.layers, content.diff_ids, strict=True):
                name = f"{hex_of(diff_id)}/layer.tar"
                if name not in written:
                    _add_layer(tar, name, blob_path(layer.digest), layer.digest == diff_id, scratch)
                    written.add(name)
                layer_names.append(name)
            tags = [parse(n).familiar() for n in names if "@" not in n]
            manifest.append({"Config": config_name, "RepoTags": tags or None, "Layers": layer_names})
        _add_bytes(tar, "manifest.json", json.dumps(manifest).encode())


def _add_layer(tar: tarfile.TarFile, name: str, blob: Path, plain: bool, scratch: Path) -> None:
    if plain:
        _add_file(tar, name, blob)
        return
    with tempfile.NamedTemporaryFile(dir=scratch) as tmp:
        with open_layer(blob) as src:
            shutil.copyfileobj(src, tmp, 1 << 20)
        tmp.flush()
        _add_file(tar, name, Path(tmp.name))


def _add_file(tar: tarfile.TarFile, name: str, path: Path) -> None:
    info = tarfile.TarInfo(name)
    info.size = path.stat().st_size
    info.mode = 0o644
    with open(path, "rb") as f:
        tar.addfile(info, f)


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o644
    tar.addfile(info, io.BytesIO(data))
