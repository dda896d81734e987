"""Base images from Debian packages, for machines that cannot reach Docker Hub.

    packages --apt-get --download-only (empty dpkg status: the whole dependency closure)--> .debs
      --dpkg-deb -x--> rootfs --+ /etc/passwd, /etc/group, standard directories, busybox as
      /bin/sh when no package brought a shell, ld.so.cache--> one layer --> the store

apt resolves dependencies exactly as an install into an empty system would (Recommends off),
from the mirror the host's apt is configured for and the package lists it has (`apt-get update`
refreshes them); nothing is installed on the host and no package scripts run. Arguments ending in
`.deb` are taken as they are, without resolving. Documentation (usr/share/doc, man, info) is left
out, as Debian's slim images do.
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import subprocess
import tarfile
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

from kubelite.images.api import ImageRecord, InvalidImageName
from kubelite.images.build.export import export
from kubelite.images.build.stage import DEFAULT_PATH, Layer, StageState, set_env
from kubelite.images.build.tarlayer import LayerWriter
from kubelite.images.reference import normalize
from kubelite.images.store import ImageStore
from kubelite.images.testimages import GROUP, PASSWD, busybox_layer

SLIM_PATHS = ("usr/share/doc", "usr/share/man", "usr/share/info", "usr/share/lintian")
DIRS = {"dev": 0o755, "proc": 0o755, "sys": 0o755, "etc": 0o755, "root": 0o700, "tmp": 0o1777, "run": 0o755,
        "home": 0o755, "var/tmp": 0o1777, "usr/local/bin": 0o755}


class BaseError(Exception):
    pass


@dataclass(frozen=True)
class BaseOptions:
    name: str
    packages: list[str]  # package names (resolved by apt) or paths of .deb files
    busybox: Path | None = Path("/bin/busybox")  # None: never add busybox
    cmd: list[str] = field(default_factory=lambda: ["sh"])
    env: dict[str, str] = field(default_factory=dict)


def make_base(store: ImageStore, options: BaseOptions, *, out: TextIO) -> ImageRecord:
    if not options.packages:
        raise BaseError("give packages to install: --from-deb PKG[,PKG...] or --from-deb FILE.deb")
    try:
        normalize(options.name)
    except InvalidImageName as e:
        raise BaseError(f"{options.name}: {e}") from None
    scratch = store.root / "build-tmp"
    scratch.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="base-", dir=scratch))
    try:
        debs = [Path(p) for p in options.packages if p.endswith(".deb")]
        missing = [str(p) for p in debs if not p.is_file()]
        if missing:
            raise BaseError(f"no such .deb file: {', '.join(missing)}")
        names = [p for p in options.packages if not p.endswith(".deb")]
        if names:
            debs += download(names, work / "apt", out=out)
        rootfs = work / "rootfs"
        packages = extract(debs, rootfs, out=out)
        finish_rootfs(rootfs, options.busybox, out=out)
        return _import(store, options, rootfs, packages, work, out=out)
    finally:
        shutil.rmtree(work, ignore_errors=True)
        with contextlib.suppress(OSError):  # only when empty: a build may be using it
            scratch.rmdir()


def download(names: list[str], work: Path, *, out: TextIO) -> list[Path]:
    """The .debs of `names` and everything they depend on (as for an empty system)."""
    archives = work / "archives"
    (archives / "partial").mkdir(parents=True)
    (work / "status").write_text("")
    if shutil.which("apt-get") is None:
        raise BaseError("apt-get not found: --from-deb package names need a Debian system (or give .deb files)")
    argv = ["apt-get", "-q", "-y", "--download-only", "--no-install-recommends",
            "-o", f"Dir::State::status={work / 'status'}", "-o", f"Dir::Cache::archives={archives}",
            "-o", "Dir::Cache::pkgcache=", "-o", "Dir::Cache::srcpkgcache=", "-o", "Debug::NoLocking=1",
            "install", *names]
    _say(out, f"resolving and fetching {' '.join(names)} with apt-get")
    result = subprocess.run(argv, capture_output=True, text=True, env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
    if result.returncode != 0:
        detail = "\n  ".join((result.stderr or result.stdout).strip().splitlines()[-6:])
        raise BaseError(f"apt-get could not fetch {' '.join(names)}:\n  {detail}\ncheck the names (apt-cache policy "
                        "NAME) and that apt reaches its Debian mirror (apt-get update)")
    debs = sorted(archives.glob("*.deb"))
    _say(out, f"fetched {len(debs)} packages ({sum(d.stat().st_size for d in debs) / 1e6:.1f}MB)")
    return debs


def extract(debs: list[Path], rootfs: Path, *, out: TextIO) -> list[str]:
    """Unpack the packages' files (no maintainer scripts run); returns "name version" of each."""
    rootfs.mkdir(parents=True)
    packages = []
    for deb in debs:
        info = subprocess.run(["dpkg-deb", "-f", str(deb), "Package", "Version"], capture_output=True, text=True)
        unpack = subprocess.run(["dpkg-deb", "-x", str(deb), str(rootfs)], capture_output=True, text=True)
        if info.returncode or unpack.returncode:
            raise BaseError(f"{deb.name} is not a usable Debian package: {(unpack.stderr or info.stderr).strip()}")
        fields = dict(line.split(": ", 1) for line in info.stdout.splitlines() if ": " in line)
        packages.append(f"{fields.get('Package', deb.name)} {fields.get('Version', '')}".strip())
    _say(out, f"unpacked {len(packages)} packages")
    for rel in SLIM_PATHS:
        shutil.rmtree(rootfs / rel, ignore_errors=True)
    return packages


def finish_rootfs(rootfs: Path, busybox: Path | None, *, out: TextIO) -> None:
    for rel, mode in DIRS.items():
        path = rootfs / rel
        if not os.path.lexists(path):
            path.mkdir(parents=True)
            path.chmod(mode)
    if not os.path.lexists(rootfs / "bin/sh") and busybox is not None:
        _say(out, f"no shell among the packages: adding {busybox} as /bin/sh")
        _add_missing(rootfs, busybox_layer(busybox))
    for name, text in (("passwd", PASSWD), ("group", GROUP)):
        if not os.path.lexists(rootfs / "etc" / name):
            (rootfs / "etc" / name).write_text(text)
    if os.geteuid() == 0 and shutil.which("ldconfig") and (rootfs / "etc/ld.so.conf.d").is_dir():
        if not (rootfs / "etc/ld.so.conf").exists():
            (rootfs / "etc/ld.so.conf").write_text("include /etc/ld.so.conf.d/*.conf\n")
        subprocess.run(["ldconfig", "-r", str(rootfs)], capture_output=True)


def _add_missing(rootfs: Path, layer: bytes) -> None:
    """The members of a (trusted, self-made) layer tar that do not exist in the rootfs yet."""
    with tarfile.open(fileobj=io.BytesIO(layer)) as tar:
        for member in tar.getmembers():
            if not os.path.lexists(rootfs / member.name):
                tar.extract(member, rootfs, filter="tar")


def _import(store: ImageStore, options: BaseOptions, rootfs: Path, packages: list[str], work: Path, *,
            out: TextIO) -> ImageRecord:
    started = time.monotonic()
    writer = LayerWriter(work / "layer.tar.gz")
    writer.add_tree(rootfs, overlay=False, owner=None if os.geteuid() == 0 else (0, 0))
    blob = writer.close()
    _say(out, f"wrote the layer: {blob.size / 1e6:.1f}MB compressed in {time.monotonic() - started:.1f}s")
    config: dict[str, object] = {"Env": [f"PATH={DEFAULT_PATH}"], "Cmd": list(options.cmd)}
    for key, value in options.env.items():
        set_env(config, key, value)
    created = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    state = StageState("base", config, [{"created": created, "created_by": "kubelite image base: " + ", ".join(packages)}],
                       [Layer(blob, writer.path)], created=created)
    _, records = export(store, state, [options.name], scratch=work)
    return records[0]


def _say(out: TextIO, text: str) -> None:
    out.write(text + "\n")
    out.flush()
