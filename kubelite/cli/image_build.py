"""`kubelite image build`: OCI images from a Dockerfile; `kubelite image base`: base images from
Debian packages (offline, no registry); `kubelite image builder-prune`: empty the build cache.

    kubelite image build [-t NAME]... [-f Dockerfile] [--build-arg K=V]... [--target STAGE]
                         [--no-cache] [--network none|host] [-q] CONTEXT
    kubelite image base NAME --from-deb PKG[,PKG...] [--from-deb FILE.deb]... [--cmd ...]
    kubelite image builder-prune

RUN steps need root (runc, overlay mounts); COPY-only builds work without it.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from kubelite.images.store import ImageStore


def add_parsers(sub: Any, common: argparse.ArgumentParser) -> dict[str, Any]:
    p = sub.add_parser("build", parents=[common], help="build an image from a Dockerfile",
                       description="Build an image from a Dockerfile into the node's image store "
                                   "(RUN needs root; the build never pulls: base images must be in the store).")
    p.add_argument("context", type=Path, help="the build context directory (COPY sources are relative to it)")
    p.add_argument("-t", "--tag", action="append", default=[], metavar="NAME", help="name the image (repeatable)")
    p.add_argument("-f", "--file", metavar="DOCKERFILE", help="the Dockerfile (default: CONTEXT/Dockerfile; - for stdin)")
    p.add_argument("--build-arg", action="append", default=[], metavar="KEY[=VALUE]",
                   help="set a build-time variable (KEY alone takes it from the environment)")
    p.add_argument("--target", default="", help="build this stage (default: the last one)")
    p.add_argument("--no-cache", action="store_true", help="do not use the layer cache")
    p.add_argument("--network", choices=("none", "host", "default"), default="none",
                   help="RUN's network: none (default: loopback only) or the host's")
    p.add_argument("-q", "--quiet", action="store_true", help="print only the image ID")
    p.add_argument("--runc", default="runc", help="the runc binary (default: %(default)s)")
    p = sub.add_parser("base", parents=[common], help="make a base image from Debian packages (offline)",
                       description="Make a one-layer base image from Debian packages and their dependencies "
                                   "(fetched with apt from the configured Debian mirror, or .deb files).")
    p.add_argument("name", help="the image name, e.g. node:18")
    p.add_argument("--from-deb", action="append", required=True, metavar="PKG[,PKG...]|FILE.deb",
                   help="packages to install (with their dependencies) or .deb files (repeatable)")
    p.add_argument("--busybox", type=Path, default=Path("/bin/busybox"),
                   help="static busybox for /bin/sh when the packages bring no shell (default: %(default)s)")
    p.add_argument("--no-busybox", action="store_true", help="never add busybox")
    p.add_argument("--cmd", nargs="+", metavar="ARG", help="the image's default command (default: sh)")
    p.add_argument("--env", action="append", default=[], metavar="KEY=VALUE", help="an environment variable")
    sub.add_parser("builder-prune", parents=[common], help="remove the build cache")
    return {"build": _build, "base": _base, "builder-prune": _prune}


def build_args(items: list[str]) -> dict[str, str]:
    out = {}
    for item in items:
        key, eq, value = item.partition("=")
        if not key:
            raise ValueError(f"--build-arg {item!r}: give KEY=VALUE")
        if eq:
            out[key] = value
        elif key in os.environ:
            out[key] = os.environ[key]
    return out


def _build(store: ImageStore, args: argparse.Namespace) -> int:
    from kubelite.images.build.errors import BuildError
    from kubelite.images.build.executor import Builder, BuildOptions

    options = BuildOptions(context=args.context, dockerfile=args.file, tags=tuple(args.tag),
                           build_args=build_args(args.build_arg), target=args.target, no_cache=args.no_cache,
                           network="none" if args.network == "default" else args.network, runc=args.runc)
    try:
        result = Builder(store, options, sys.stdout, quiet=args.quiet).build()
    except BuildError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("error: build interrupted", file=sys.stderr)
        return 130
    if args.quiet:
        print(result.image_id)
    else:
        print(f"built {result.image_id} in {result.seconds:.2f}s ({result.cached}/{result.steps} steps cached)")
    return 0


def _base(store: ImageStore, args: argparse.Namespace) -> int:
    from kubelite.images.build.debbase import BaseError, BaseOptions, make_base

    env = dict(e.partition("=")[::2] for e in args.env)
    options = BaseOptions(name=args.name, packages=[p for item in args.from_deb for p in item.split(",") if p],
                          busybox=None if args.no_busybox else args.busybox, cmd=args.cmd or ["sh"], env=env)
    try:
        record = make_base(store, options, out=sys.stdout)
    except BaseError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(f"{record.reference} {record.id}")
    return 0


def _prune(store: ImageStore, args: argparse.Namespace) -> int:
    from kubelite.images.build.cache import BuildCache

    entries, size = BuildCache(store.root / "build-cache").prune()
    print(f"Deleted {entries} build cache entries ({size / 1e6:.1f}MB of layers)")
    return 0
