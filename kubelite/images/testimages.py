"""Small images built on the spot from the host's busybox-static, for tests and offline use.

    busybox  (docker.io/library/busybox:latest)  busybox + applet symlinks, /etc/passwd, /etc/group; CMD sh
    httpd    (docker.io/kubelite/httpd:latest)   busybox + /www (index.html, cgi-bin/id printing the
                                                 hostname); CMD httpd -f -p 80 -h /www
    kubernetes-bootcamp (docker.io/kubelite/kubernetes-bootcamp:v1, :v2)  the Kubernetes Basics
                                                 tutorial's app on 8080, answering with its pod and version

Everything is written with the standard library as real OCI content: `LayerBuilder` makes layer
tarballs (whiteouts and opaque markers included, for tests), `build_image` turns layers into
gzip blobs, a config and a manifest, and `write_layout` lays images out as an OCI image layout
that `ImageStore.import_oci_layout` (or skopeo, umoci) reads. Timestamps are fixed and entries
sorted, so the same busybox binary always yields the same digests.
"""

from __future__ import annotations

import functools
import gzip
import io
import json
import struct
import subprocess
import tarfile
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kubelite.images.api import ImageNotFound, ImageRecord
from kubelite.images.oci import (
    ANNOTATION_REF_NAME,
    OCI_CONFIG,
    OCI_INDEX,
    OCI_LAYER,
    OCI_LAYER_GZIP,
    OCI_LAYOUT_VERSION,
    OCI_MANIFEST,
    Descriptor,
    canonical_json,
    digest_of,
    host_platform,
)

if TYPE_CHECKING:
    from kubelite.images.store import ImageStore

BUSYBOX = Path("/bin/busybox")
BUSYBOX_REF = "docker.io/library/busybox:latest"
HTTPD_REF = "docker.io/kubelite/httpd:latest"
CREATED = "1970-01-01T00:00:00Z"
PATH_ENV = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
PASSWD = "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"
GROUP = "root:x:0:\nnobody:x:65534:\n"
CGI_ID = '#!/bin/sh\necho "Content-Type: text/plain"\necho\nhostname\n'
# The Kubernetes Basics tutorial's app, offline: answers "Hello Kubernetes bootcamp! | Running on:
# <pod> | v=N" on 8080 (busybox httpd runs /cgi-bin/index.cgi for "/") and logs its start.
BOOTCAMP_REF = "docker.io/kubelite/kubernetes-bootcamp"
BOOTCAMP_CGI = ('#!/bin/sh\necho "Content-Type: text/plain"\necho\n'
                'echo "Hello Kubernetes bootcamp! | Running on: $(hostname) | v={version}"\n')
BOOTCAMP_CMD = ('echo "Kubernetes Bootcamp App Started At: $(date -u +%Y-%m-%dT%H:%M:%SZ) | Running On: $(hostname)"; '
                'exec httpd -f -v -p 8080 -h /www')
INDEX_HTML = "hello from kubelite httpd\n"


class LayerBuilder:
    """A layer tarball, entry by entry (PAX format, owner root, mtime 0 unless told)."""

    def __init__(self) -> None:
        self._buf = io.BytesIO()
        self._tar = tarfile.open(fileobj=self._buf, mode="w", format=tarfile.PAX_FORMAT)  # noqa: SIM115

    def add(self, info: tarfile.TarInfo, data: bytes | None = None) -> LayerBuilder:
        """Any entry as given (tests use it for hostile names and link targets)."""
        if data is not None:
            info.size = len(data)
        self._tar.addfile(info, io.BytesIO(data) if data is not None else None)
        return self

    def dir(self, path: str, mode: int = 0o755, **kw: Any) -> LayerBuilder:
        return self.add(_info(path, tarfile.DIRTYPE, mode, **kw))

    def file(self, path: str, data: bytes | str, mode: int = 0o644, **kw: Any) -> LayerBuilder:
        return self.add(_info(path, tarfile.REGTYPE, mode, **kw), data.encode() if isinstance(data, str) else data)

    def symlink(self, path: str, target: str) -> LayerBuilder:
        return self.add(_info(path, tarfile.SYMTYPE, 0o777, linkname=target))

    def hardlink(self, path: str, target: str) -> LayerBuilder:
        return self.add(_info(path, tarfile.LNKTYPE, 0o644, linkname=target))

    def device(self, path: str, major: int, minor: int, *, block: bool = False, mode: int = 0o666) -> LayerBuilder:
        info = _info(path, tarfile.BLKTYPE if block else tarfile.CHRTYPE, mode)
        info.devmajor, info.devminor = major, minor
        return self.add(info)

    def fifo(self, path: str, mode: int = 0o644) -> LayerBuilder:
        return self.add(_info(path, tarfile.FIFOTYPE, mode))

    def whiteout(self, path: str) -> LayerBuilder:
        """Delete `path` of the lower layers (AUFS/OCI `.wh.` form)."""
        parent, _, name = path.rpartition("/")
        return self.file(f"{parent}/.wh.{name}" if parent else f".wh.{name}", b"", 0o644)

    def opaque(self, directory: str) -> LayerBuilder:
        """Hide everything the lower layers have in `directory`."""
        return self.file(f"{directory}/.wh..wh..opq", b"", 0o644)

    def build(self) -> bytes:
        self._tar.close()
        return self._buf.getvalue()


def _info(path: str, kind: bytes, mode: int, *, uid: int = 0, gid: int = 0, mtime: float = 0,
          linkname: str = "", xattrs: dict[str, str] | None = None) -> tarfile.TarInfo:
    info = tarfile.TarInfo(path)
    info.type, info.mode, info.uid, info.gid, info.mtime, info.linkname = kind, mode, uid, gid, mtime, linkname
    if xattrs:
        info.pax_headers = {f"SCHILY.xattr.{k}": v for k, v in xattrs.items()}
    return info


@dataclass(frozen=True)
class BuiltImage:
    manifest: Descriptor
    config: dict[str, Any]
    blobs: dict[str, bytes]  # digest -> content (manifest, config, layers)


def build_image(layers: Sequence[bytes], *, cmd: Sequence[str] = ("sh",), entrypoint: Sequence[str] = (),
                env: Sequence[str] = (PATH_ENV,), working_dir: str = "", user: str = "",
                exposed_ports: Sequence[str] = (), gzip_level: int | None = 6) -> BuiltImage:
    """An OCI image of these layer tarballs (lowest first), gzip-compressed unless gzip_level is None."""
    blobs: dict[str, bytes] = {}
    layer_descs = []
    for tar in layers:
        blob = tar if gzip_level is None else _gzip(tar, gzip_level)
        digest = digest_of(blob)
        blobs[digest] = blob
        layer_descs.append(Descriptor(OCI_LAYER if gzip_level is None else OCI_LAYER_GZIP, digest, len(blob)))
    image_config: dict[str, Any] = {"Env": list(env), "Cmd": list(cmd)}
    if entrypoint:
        image_config["Entrypoint"] = list(entrypoint)
    if working_dir:
        image_config["WorkingDir"] = working_dir
    if user:
        image_config["User"] = user
    if exposed_ports:
        image_config["ExposedPorts"] = {p: {} for p in exposed_ports}
    config = {"created": CREATED, **host_platform(), "config": image_config,
              "rootfs": {"type": "layers", "diff_ids": [digest_of(t) for t in layers]},
              "history": [{"created": CREATED, "created_by": "kubelite.images.testimages"} for _ in layers]}
    config_bytes = canonical_json(config)
    blobs[digest_of(config_bytes)] = config_bytes
    manifest = {"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                "config": {"mediaType": OCI_CONFIG, "digest": digest_of(config_bytes), "size": len(config_bytes)},
                "layers": [d.to_json() for d in layer_descs]}
    manifest_bytes = canonical_json(manifest)
    blobs[digest_of(manifest_bytes)] = manifest_bytes
    return BuiltImage(Descriptor(OCI_MANIFEST, digest_of(manifest_bytes), len(manifest_bytes)), config, blobs)


@functools.lru_cache(maxsize=16)
def _gzip(tar: bytes, level: int) -> bytes:
    return gzip.compress(tar, compresslevel=level, mtime=0)


def write_layout(dest: Path, images: dict[str, BuiltImage]) -> Path:
    """An OCI image layout holding `images`, each tagged with its key as ref.name."""
    (dest / "blobs" / "sha256").mkdir(parents=True, exist_ok=True)
    (dest / "oci-layout").write_text(json.dumps({"imageLayoutVersion": OCI_LAYOUT_VERSION}))
    manifests = []
    for ref_name, image in images.items():
        for digest, data in image.blobs.items():
            (dest / "blobs" / "sha256" / digest.removeprefix("sha256:")).write_bytes(data)
        manifests.append({**image.manifest.to_json(), "annotations": {ANNOTATION_REF_NAME: ref_name}})
    index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests}
    (dest / "index.json").write_text(json.dumps(index, indent=1))
    return dest


def busybox_layer(busybox: Path = BUSYBOX) -> bytes:
    """busybox, its applets as symlinks where `--list-full` puts them, a minimal /etc."""
    binary = _static_busybox(busybox)
    applets = subprocess.run([str(busybox), "--list-full"], capture_output=True, text=True, check=True).stdout.split()
    layer = LayerBuilder()
    dirs = {"bin", "dev", "etc", "home", "proc", "sys", "usr", "usr/bin", "usr/sbin", "sbin", "var"}
    dirs |= {a.rpartition("/")[0] for a in applets if "/" in a}
    for d in sorted(dirs):
        layer.dir(d)
    layer.dir("root", 0o700).dir("tmp", 0o1777).dir("var/tmp", 0o1777)
    layer.file("bin/busybox", binary, 0o755)
    for applet in sorted(set(applets) - {"bin/busybox", "linuxrc"}):
        if "/" in applet:
            layer.symlink(applet, "/bin/busybox")
    layer.file("etc/passwd", PASSWD).file("etc/group", GROUP)
    return layer.build()


def httpd_layer() -> bytes:
    return (LayerBuilder().dir("www").file("www/index.html", INDEX_HTML)
            .dir("www/cgi-bin").file("www/cgi-bin/id", CGI_ID, 0o755).build())


def bootcamp_layer(version: int) -> bytes:
    return (LayerBuilder().dir("www").dir("www/cgi-bin")
            .file("www/cgi-bin/index.cgi", BOOTCAMP_CGI.format(version=version), 0o755).build())


def build_test_images(busybox: Path = BUSYBOX, *, gzip_level: int | None = 6) -> dict[str, BuiltImage]:
    base = busybox_layer(busybox)
    bootcamp = {f"{BOOTCAMP_REF}:v{v}": build_image([base, bootcamp_layer(v)], cmd=["sh", "-c", BOOTCAMP_CMD],
                                                   exposed_ports=["8080/tcp"], gzip_level=gzip_level)
                for v in (1, 2)}
    return {
        BUSYBOX_REF: build_image([base], cmd=["sh"], gzip_level=gzip_level),
        HTTPD_REF: build_image([base, httpd_layer()], cmd=["httpd", "-f", "-p", "80", "-h", "/www"],
                               exposed_ports=["80/tcp"], gzip_level=gzip_level),
        **bootcamp,
    }


TEST_IMAGES = (BUSYBOX_REF, HTTPD_REF, f"{BOOTCAMP_REF}:v1", f"{BOOTCAMP_REF}:v2")


def ensure_test_images(store: ImageStore, busybox: Path = BUSYBOX) -> dict[str, ImageRecord]:
    """The test images (busybox, httpd, the tutorial's bootcamp v1 and v2) in `store`, built and
    imported unless present."""
    try:
        return {ref: store.get(ref) for ref in TEST_IMAGES}
    except ImageNotFound:
        pass
    with tempfile.TemporaryDirectory(prefix="kubelite-testimages-") as tmp:
        write_layout(Path(tmp), build_test_images(busybox))
        store.import_oci_layout(Path(tmp))
    return {ref: store.get(ref) for ref in TEST_IMAGES}


def _static_busybox(path: Path) -> bytes:
    """The binary, if it is a static ELF (a dynamic one would need the host's libraries)."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise FileNotFoundError(f"{path} not found: install Debian's busybox-static (apt-get install busybox-static)") from None
    if data[:4] != b"\x7fELF" or data[4] != 2:
        raise ValueError(f"{path} is not a 64-bit ELF binary")
    phoff, = struct.unpack_from("<Q", data, 0x20)
    phentsize, phnum = struct.unpack_from("<HH", data, 0x36)
    for i in range(phnum):
        if struct.unpack_from("<I", data, phoff + i * phentsize)[0] == 3:  # PT_INTERP: dynamically linked
            raise ValueError(f"{path} is dynamically linked: install busybox-static (apt-get install busybox-static)")
    return data
