"""The image store as the node runtime sees it (the contract between `kubelite.images` and the
runc runtime; `kubelite.images.store.ImageStore` implements it).

An image is found by reference (`busybox`, `localhost:5000/hello:1.0`, `name@sha256:...`; normalised
as Docker does). Its layers are unpacked once each into read-only snapshot directories (whiteouts
already applied as overlayfs expects), so a container rootfs is an overlay mount of
`layer_dirs` (lowest first) plus a writable upper directory.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol


class ImageNotFound(Exception):
    """No image with that reference in the store (the kubelet reports ErrImageNeverPull /
    ErrImagePull depending on the pull policy)."""


class InvalidImageName(Exception):
    """The reference cannot be parsed (the kubelet reports InvalidImageName)."""


@dataclass(frozen=True)
class ImageRecord:
    reference: str  # normalised: docker.io/library/busybox:latest
    id: str  # sha256:<config digest>
    digest: str  # sha256:<manifest digest> (the imageID the kubelet reports: repo@digest)
    config: dict[str, Any]  # the OCI image config ("config": {Entrypoint, Cmd, Env, WorkingDir, User, ...})
    layer_dirs: tuple[Path, ...]  # unpacked snapshots, lowest layer first
    size: int


class ImageStoreAPI(Protocol):
    def get(self, reference: str) -> ImageRecord:
        """The image for `reference`, its layers unpacked; raises ImageNotFound / InvalidImageName."""
        ...

    def list(self) -> list[ImageRecord]: ...
