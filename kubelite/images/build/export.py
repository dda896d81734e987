"""The built image into the store: config, manifest, and names, through the store's own import.

`image_config` assembles the OCI image config (platform, created, config, rootfs.diff_ids,
history) from the final stage; `export` writes a throwaway OCI image layout whose blobs are hard
links to the layer blobs (the build cache's, or the store's for base layers) plus the config and
manifest, one index entry per `-t` name, and imports it: the store verifies and publishes it as
any import (blobs it has are not copied again; snapshots that exist are not unpacked again).
Documents are canonical JSON, so the same build yields the same image ID.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from kubelite.images.api import ImageRecord
from kubelite.images.build.stage import StageState
from kubelite.images.oci import (
    ANNOTATION_IMAGE_NAME,
    OCI_CONFIG,
    OCI_INDEX,
    OCI_LAYOUT_VERSION,
    OCI_MANIFEST,
    canonical_json,
    digest_of,
    host_platform,
)
from kubelite.images.reference import normalize
from kubelite.images.store import ImageStore


def image_config(state: StageState, *, platform: dict[str, str] | None = None) -> dict[str, Any]:
    config: dict[str, Any] = {**(platform or host_platform()), "created": state.created or "1970-01-01T00:00:00Z",
                              "config": {k: v for k, v in state.config.items() if v not in (None, {}, [])},
                              "rootfs": {"type": "layers", "diff_ids": [x.blob.diff_id for x in state.layers]},
                              "history": state.history}
    if state.author:
        config["author"] = state.author
    return config


def manifest_for(state: StageState, config_bytes: bytes) -> dict[str, Any]:
    return {"schemaVersion": 2, "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": digest_of(config_bytes), "size": len(config_bytes)},
            "layers": [{"mediaType": x.blob.media_type, "digest": x.blob.digest, "size": x.blob.size}
                       for x in state.layers]}


def export(store: ImageStore, state: StageState, names: list[str], *, scratch: Path) -> tuple[str, list[ImageRecord]]:
    """Publish the stage's image under `names` (none: untagged); returns (image ID, records)."""
    config_bytes = canonical_json(image_config(state))
    manifest_bytes = canonical_json(manifest_for(state, config_bytes))
    full_names = [normalize(n) for n in names]
    scratch.mkdir(parents=True, exist_ok=True)
    layout = Path(tempfile.mkdtemp(prefix="export-", dir=scratch))
    try:
        blobs = layout / "blobs" / "sha256"
        blobs.mkdir(parents=True)
        for layer in state.layers:
            _link(layer.path, blobs / layer.blob.digest.removeprefix("sha256:"))
        for data in (config_bytes, manifest_bytes):
            (blobs / digest_of(data).removeprefix("sha256:")).write_bytes(data)
        top = {"mediaType": OCI_MANIFEST, "digest": digest_of(manifest_bytes), "size": len(manifest_bytes)}
        manifests = [{**top, "annotations": {ANNOTATION_IMAGE_NAME: n}} for n in full_names] or [top]
        (layout / "oci-layout").write_text(json.dumps({"imageLayoutVersion": OCI_LAYOUT_VERSION}))
        (layout / "index.json").write_text(json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX,
                                                       "manifests": manifests}))
        records = store.import_oci_layout(layout)
    finally:
        shutil.rmtree(layout, ignore_errors=True)
    return digest_of(config_bytes), records


def _link(source: Path, target: Path) -> None:
    try:
        os.link(source, target)
    except OSError:  # another file system (or no hard links): copy
        with contextlib.suppress(FileExistsError):
            shutil.copyfile(source, target)
