"""`kubelite image`: the node's image store from the command line.

    kubelite image import ./layout [busybox:1.36] [--ref-name latest]   an OCI layout (dir or tar)
    kubelite image load -i busybox.tar                                  a `docker save` tarball
    kubelite image save -o out.tar busybox httpd                        a `docker save` tarball
    kubelite image ls | tag SRC DST | rm REF... | inspect REF... | prune
    kubelite image build-test-images                                    busybox + httpd from busybox-static

The store lives in `<data-dir>/images`, shared with the node agent (it is safe to use while the
agent runs: writers lock, readers never see a half-written index).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kubelite.cli.common import default_data_dir

if TYPE_CHECKING:
    from kubelite.images.store import GcResult, ImageStore

# pull/push/login (the distribution client) and build (Dockerfiles)
EXTENSION_MODULES = ("kubelite.cli.image_remote", "kubelite.cli.image_build")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--data-dir", type=Path, default=default_data_dir(),
                        help="node state; the store is <data-dir>/images (default: %(default)s)")
    sub = parser.add_subparsers(dest="image_verb", metavar="SUBCOMMAND", required=True)
    p = sub.add_parser("import", parents=[common], help="import images from an OCI image layout (directory or tar)")
    p.add_argument("path", type=Path)
    p.add_argument("reference", nargs="?", help="name for the image (a bare repository takes each image's ref.name tag)")
    p.add_argument("--ref-name", help="only the layout's image with this org.opencontainers.image.ref.name")
    p = sub.add_parser("load", parents=[common], help="load images from a `docker save` tarball (or OCI archive)")
    p.add_argument("-i", "--input", type=Path, help="tarball to read (default: stdin)")
    p = sub.add_parser("save", parents=[common], help="write images as a `docker save` tarball")
    p.add_argument("references", nargs="+")
    p.add_argument("-o", "--output", type=Path, help="file to write (default: stdout)")
    p = sub.add_parser("ls", parents=[common], help="list images")
    p.add_argument("-q", "--quiet", action="store_true", help="only image IDs")
    p.add_argument("--digests", action="store_true", help="show manifest digests")
    p = sub.add_parser("tag", parents=[common], help="give an image another name")
    p.add_argument("source")
    p.add_argument("target")
    p = sub.add_parser("rm", parents=[common], help="remove names (and, with the last name, the image)")
    p.add_argument("references", nargs="+")
    p.add_argument("--no-prune", action="store_true", help="keep unreferenced blobs and snapshots")
    p = sub.add_parser("inspect", parents=[common], help="show images as JSON")
    p.add_argument("references", nargs="+")
    sub.add_parser("prune", parents=[common], help="remove untagged images and unreferenced content")
    for module in _extensions():
        _VERBS.update(module.add_parsers(sub, common))
    p = sub.add_parser("build-test-images", parents=[common],
                       help="build busybox and httpd test images from busybox-static into the store")
    p.add_argument("--busybox", type=Path, default=Path("/bin/busybox"))


def _extensions() -> list[Any]:
    """Verb groups kept in their own modules: each has `add_parsers(sub, common)` returning
    {verb: handler(store, args)}."""
    import importlib

    return [importlib.import_module(name) for name in EXTENSION_MODULES]


def run(args: argparse.Namespace) -> int:
    from kubelite.images.api import ImageNotFound, InvalidImageName
    from kubelite.images.blobs import DigestMismatch
    from kubelite.images.layers import LayerError
    from kubelite.images.oci import ImageFormatError
    from kubelite.images.store import ImageStore, default_root

    try:
        store = ImageStore(default_root(args.data_dir))
        return int(_VERBS[args.image_verb](store, args) or 0)
    except BrokenPipeError:  # `kubelite image inspect x | head`
        return 0
    except (ImageNotFound, InvalidImageName, ImageFormatError, DigestMismatch, LayerError,
            OSError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1


def _import(store: ImageStore, args: argparse.Namespace) -> int:
    for record in store.import_oci_layout(args.path, args.reference, ref_name=args.ref_name):
        print(f"Imported image: {record.reference or '<untagged>'} ({record.id})")
    return 0


def _load(store: ImageStore, args: argparse.Namespace) -> int:
    if args.input:
        records = store.load_docker_archive(args.input)
    else:
        with tempfile.NamedTemporaryFile(dir=store.root, prefix=".stdin-") as tmp:
            shutil.copyfileobj(sys.stdin.buffer, tmp, 1 << 20)
            tmp.flush()
            records = store.load_docker_archive(Path(tmp.name))
    for record in records:
        print(f"Loaded image: {record.reference}" if record.reference else f"Loaded image ID: {record.id}")
    return 0


def _save(store: ImageStore, args: argparse.Namespace) -> int:
    if args.output:
        with open(args.output, "wb") as out:
            store.save(args.references, out)
        return 0
    if sys.stdout.isatty():
        print("error: refusing to write a tarball to a terminal; use -o FILE or redirect", file=sys.stderr)
        return 1
    store.save(args.references, sys.stdout.buffer)
    sys.stdout.buffer.flush()
    return 0


def _ls(store: ImageStore, args: argparse.Namespace) -> int:
    from kubelite.images.reference import parse

    rows = []
    for entry, content in sorted(store.images(), key=lambda x: (not x[0].name, x[0].name)):
        if entry.name:
            ref = parse(entry.name)
            repo, tag = ref.repository, ref.tag or "<none>"
        else:
            repo, tag = "<none>", "<none>"
        image_id = content.config_digest.removeprefix("sha256:")[:12]
        row = [repo, tag] + ([entry.digest] if args.digests else []) + [image_id, _human(content.size)]
        rows.append(row)
    if args.quiet:
        for image_id in dict.fromkeys(r[-2] for r in rows):
            print(image_id)
        return 0
    header = ["IMAGE", "TAG"] + (["DIGEST"] if args.digests else []) + ["IMAGE ID", "SIZE"]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        print("   ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
    return 0


def _tag(store: ImageStore, args: argparse.Namespace) -> int:
    store.tag(args.source, args.target)
    return 0


def _rm(store: ImageStore, args: argparse.Namespace) -> int:
    for reference in args.references:
        removed, gc = store.remove(reference, prune=not args.no_prune)
        for name in removed:
            print(f"Untagged: {name}")
        _print_gc(gc)
    return 0


def _inspect(store: ImageStore, args: argparse.Namespace) -> int:
    print(json.dumps([store.inspect(r) for r in args.references], indent=2))
    return 0


def _prune(store: ImageStore, args: argparse.Namespace) -> int:
    dropped, gc = store.prune()
    for digest in dropped:
        print(f"Deleted untagged image: {digest}")
    _print_gc(gc)
    return 0


def _build_test_images(store: ImageStore, args: argparse.Namespace) -> int:
    from kubelite.images.testimages import ensure_test_images

    for ref, record in ensure_test_images(store, args.busybox).items():
        print(f"{ref} {record.id}")
    return 0


def _print_gc(gc: GcResult) -> None:
    for digest in gc.snapshots:
        print(f"Deleted snapshot: {digest}")
    if gc.blobs:
        print(f"Deleted {len(gc.blobs)} blobs ({_human(gc.bytes_freed)})")
    for digest in gc.kept_mounted:
        print(f"Kept snapshot {digest}: still mounted")


def _human(size: int) -> str:
    value = float(size)
    for unit in ("B", "kB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:.0f}{unit}" if unit == "B" else f"{value:.3g}{unit}"
        value /= 1000
    return f"{size}B"


_VERBS = {"import": _import, "load": _load, "save": _save, "ls": _ls, "tag": _tag, "rm": _rm,
          "inspect": _inspect, "prune": _prune, "build-test-images": _build_test_images}
