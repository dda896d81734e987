"""`kubelite image pull|push|login|logout`: images over the OCI distribution protocol.

    kubelite image pull busybox                                  # docker.io/library/busybox:latest
    kubelite image pull --platform linux/arm64 localhost:5000/app:1.0
    kubelite image push localhost:5000/hello-world:1.0
    kubelite image login localhost:5000 -u me --password-stdin < pw.txt
    kubelite image logout localhost:5000

Output follows Docker's (`latest: Pulling from library/busybox`, a line per layer, `Digest:`,
`Status:`); on a terminal the layer lines show live progress. Registries named `localhost:*` or
`127.0.0.1:*`, those in `--insecure-registry` and in `<data-dir>/registries.yaml` (format:
`kubelite.images.distribution.registries`) are spoken to over plain HTTP. Credentials come from
`<data-dir>/config.json` (what `login` writes) and Docker's config.json.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from kubelite.images.distribution.client import RegistryClient
    from kubelite.images.distribution.registries import RegistryHosts
    from kubelite.images.store import ImageStore


def add_parsers(sub: Any, common: argparse.ArgumentParser) -> dict[str, Any]:
    registry = argparse.ArgumentParser(add_help=False)
    registry.add_argument("--insecure-registry", action="append", default=[], metavar="HOST",
                          help="speak plain HTTP to this registry (host:port, host, or a CIDR; repeatable)")
    registry.add_argument("--registries-config", type=Path, metavar="PATH",
                          help="mirrors, TLS and plain-HTTP registries (default: <data-dir>/registries.yaml if present)")
    p = sub.add_parser("pull", parents=[common, registry], help="pull an image from a registry")
    p.add_argument("reference", help="NAME[:TAG|@DIGEST], e.g. busybox or localhost:5000/app:1.0")
    p.add_argument("--platform", help="os/arch[/variant] to pick from a multi-platform image (default: this host's)")
    p.add_argument("-q", "--quiet", action="store_true", help="print only the image name")
    p = sub.add_parser("push", parents=[common, registry], help="push an image to a registry")
    p.add_argument("reference", help="NAME[:TAG] as the store names it (tag it first with `kubelite image tag`)")
    p.add_argument("-q", "--quiet", action="store_true", help="print only the pushed digest line")
    p = sub.add_parser("login", parents=[common, registry], help="check and save credentials for a registry")
    p.add_argument("server", nargs="?", default="docker.io", help="registry host[:port] (default: Docker Hub)")
    p.add_argument("-u", "--username")
    p.add_argument("-p", "--password", help="insecure: prefer --password-stdin")
    p.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    p = sub.add_parser("logout", parents=[common], help="forget the saved credentials of a registry")
    p.add_argument("server", nargs="?", default="docker.io")
    return {"pull": _pull, "push": _push, "login": _login, "logout": _logout}


def _hosts(args: argparse.Namespace) -> RegistryHosts:
    from kubelite.images.distribution.node import load_hosts

    return load_hosts(data_dir=args.data_dir, config_path=args.registries_config, insecure=args.insecure_registry)


def _run(coro: Any) -> int:
    """Run a client coroutine, turning registry failures into one line on stderr."""
    import asyncio

    from kubelite.images.distribution.errors import DistributionError

    try:
        return int(asyncio.run(coro) or 0)
    except DistributionError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted: nothing of the unfinished transfers was stored", file=sys.stderr)
        return 130


def _client(args: argparse.Namespace) -> RegistryClient:
    """A client with the registries settings and the node's credentials; says which tag a bare
    name means, as Docker does."""
    from kubelite.images.distribution.client import RegistryClient
    from kubelite.images.distribution.credentials import node_keyring
    from kubelite.images.reference import parse

    ref = parse(args.reference)
    client = RegistryClient(hosts=_hosts(args), keyring=node_keyring(args.data_dir))
    if not ref.tag and not ref.digest and not args.quiet:
        print("Using default tag: latest")
    return client


def _pull(store: ImageStore, args: argparse.Namespace) -> int:
    from kubelite.images.distribution.progress import progress_for
    from kubelite.images.distribution.pull import parse_platform, pull_image
    from kubelite.images.reference import parse

    platform = parse_platform(args.platform)

    async def body() -> int:
        async with _client(args) as client:
            result = await pull_image(client, store, args.reference, platform=platform,
                                      progress=progress_for(sys.stdout, quiet=args.quiet))
        if not args.quiet:
            familiar = parse(result.name).familiar()
            print(f"Digest: {result.digest}")
            print(f"Status: {'Image is up to date' if result.up_to_date else 'Downloaded newer image'} for {familiar}")
        print(result.name)
        return 0

    return _run(body())


def _push(store: ImageStore, args: argparse.Namespace) -> int:
    from kubelite.images.distribution.progress import progress_for
    from kubelite.images.distribution.push import push_image

    async def body() -> int:
        async with _client(args) as client:
            result = await push_image(client, store, args.reference, progress=progress_for(sys.stdout, quiet=args.quiet))
        print(f"{result.tag}: digest: {result.digest} size: {result.size}")
        return 0

    return _run(body())


def _login(store: ImageStore, args: argparse.Namespace) -> int:
    from kubelite.images.distribution.client import RegistryClient
    from kubelite.images.distribution.credentials import Credential, save_login

    username, password = _login_input(args)
    registry = _registry_name(args.server)
    hosts = _hosts(args)

    async def body() -> int:
        async with RegistryClient(hosts=hosts) as client:
            await client.login(registry, Credential(username, password, source=f"login to {registry}"))
        save_login(args.data_dir / "config.json", registry, username, password)
        print("Login Succeeded")
        return 0

    return _run(body())


def _login_input(args: argparse.Namespace) -> tuple[str, str]:
    import getpass

    if args.password and args.password_stdin:
        raise ValueError("--password and --password-stdin are mutually exclusive")
    if args.password:
        print("WARNING! Using --password via the CLI is insecure. Use --password-stdin.", file=sys.stderr)
    username = args.username
    if not username:
        if args.password_stdin or not sys.stdin.isatty():
            raise ValueError("give --username with --password-stdin")
        username = input("Username: ").strip()
    if args.password_stdin:
        password = sys.stdin.read().rstrip("\r\n")
    else:
        password = args.password or (getpass.getpass("Password: ") if sys.stdin.isatty() else "")
    if not username or not password:
        raise ValueError("a user name and a password are needed (-u USER, --password-stdin)")
    return username, password


def _logout(store: ImageStore, args: argparse.Namespace) -> int:
    from kubelite.images.distribution.credentials import remove_login

    registry = _registry_name(args.server)
    if remove_login(args.data_dir / "config.json", registry):
        print(f"Removing login credentials for {registry}")
    else:
        print(f"Not logged in to {registry}")
    return 0


def _registry_name(server: str) -> str:
    """`https://reg:5000/` -> `reg:5000` (Docker accepts URLs for login)."""
    return server.split("://", 1)[-1].split("/", 1)[0].lower()
