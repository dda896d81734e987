"""`kubelite service NAME [-n NS] [--url] [--https] [--wait S]`: where a Service answers from this
machine, as `minikube service` prints it, and a browser opened on it where there is one.

Data flow: admin kubeconfig -> Client -> the Service (NotFound: say so) -> wait (up to --wait) for a
ready endpoint in its EndpointSlices and, for a LoadBalancer, for its ingress address -> the nodes
-> `service_urls` (pure) -> `--url`: the URLs, one a line; else minikube's table, then the browser.

URLs: a LoadBalancer's ingress address with each service port first (the built-in allocator's
address, reachable from the host), then `<node InternalIP>:<nodePort>` of the first Ready node for
each port that has a node port. A ClusterIP or ExternalName service has neither: that is an error
with minikube's wording and what to do instead. Progress and notes go to stderr, so `--url`
output stays exactly the URLs.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kubelite.cli.common import add_data_dir

if TYPE_CHECKING:
    from kubelite.client import Client

Obj = dict[str, Any]
POLL_INTERVAL = 0.5
EXPOSED_TYPES = ("NodePort", "LoadBalancer")


class ServiceError(Exception):
    """A user-facing failure: the message says what is wrong and what to do."""


@dataclass(frozen=True)
class ServiceURL:
    port: str  # minikube's TARGET PORT column: "name/port" or "port" (the service port)
    url: str


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_data_dir(parser)
    parser.add_argument("name", help="the Service's name")
    parser.add_argument("-n", "--namespace", default="default", help="its namespace (default: %(default)s)")
    parser.add_argument("--url", action="store_true", help="print only the URL(s), one a line; no browser")
    parser.add_argument("--https", action="store_true", help="https:// URLs instead of http://")
    parser.add_argument("--wait", type=float, default=20.0, metavar="SECONDS",
                        help="how long to wait for a ready endpoint, 0 not to wait (default: %(default)s)")


def run(args: argparse.Namespace) -> int:
    from kubelite.cli.kubectl import NoCluster, admin_kubeconfig

    try:
        kubeconfig = admin_kubeconfig(args.data_dir)
        urls = asyncio.run(_urls(kubeconfig, args))
    except (ServiceError, NoCluster) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    if args.url:
        print("\n".join(u.url for u in urls))
        return 0
    print(table(args.namespace, args.name, urls), end="")
    _open_browser(f"{args.namespace}/{args.name}", urls[0].url)
    return 0


async def _urls(kubeconfig: Path, args: argparse.Namespace) -> list[ServiceURL]:
    import aiohttp

    from kubelite.client import Client, Connection
    from kubelite.client.resources import NODES

    try:
        connection = Connection.from_kubeconfig(kubeconfig)
    except Exception as exc:  # YAML, missing keys, unreadable certificates: all mean the same to a user
        raise ServiceError(f"cannot use {kubeconfig} ({type(exc).__name__}: {exc}); `kubelite start` writes "
                           "it again") from exc
    client = Client(connection, user_agent="kubelite-service")
    try:
        service = await _wait_ready(client, args.name, args.namespace, wait=args.wait)
        nodes = (await client.list(NODES))["items"]
    except aiohttp.ClientError as exc:
        raise ServiceError(f"cannot reach the API server at {connection.base_url} ({exc}); is the cluster "
                           "running? See `kubelite status`") from exc
    finally:
        await client.close()
    scheme = "https" if args.https else "http"
    urls = service_urls(service, nodes, scheme=scheme)
    if not urls:
        raise ServiceError(f"service {args.namespace}/{args.name} has no address reachable from here yet: "
                           "no Ready node with an InternalIP and no LoadBalancer address; see "
                           "`kubelite kubectl -- get nodes -o wide`")
    return urls


async def _wait_ready(client: Client, name: str, namespace: str, *, wait: float) -> Obj:
    """The Service once it has a ready endpoint (and, as a LoadBalancer, its address), or at the
    deadline: no ready endpoint is an error, a still-pending address only a note."""
    from kubelite.client.resources import ENDPOINTSLICES, SERVICES
    from kubelite.objects.errors import NotFound

    deadline = time.monotonic() + wait
    announced = False
    while True:
        try:
            service = await client.get(SERVICES, name, namespace)
        except NotFound:
            raise ServiceError(f'service "{name}" not found in namespace "{namespace}"; list them with '
                               f"`kubelite kubectl -- get services -n {namespace}`") from None
        check_exposed(service)
        slices = (await client.list(ENDPOINTSLICES, namespace,
                                    label_selector=f"kubernetes.io/service-name={name}"))["items"]
        ready, pending_lb = has_ready_endpoint(slices), lb_pending(service)
        if (ready and not pending_lb) or time.monotonic() >= deadline:
            break
        if not announced:
            what = "a ready endpoint" if not ready else "its LoadBalancer address"
            print(f"* Waiting up to {wait:g}s for service {namespace}/{name} to have {what}...",
                  file=sys.stderr, flush=True)
            announced = True
        await asyncio.sleep(min(POLL_INTERVAL, max(0.0, deadline - time.monotonic())))
    if not ready:
        raise ServiceError(f"service {namespace}/{name} has no ready endpoint after {wait:g}s: no Ready pod "
                           "matches its selector; see `kubelite kubectl -- get pods,endpointslices -n "
                           f"{namespace}` (or --wait longer)")
    if pending_lb:
        print(f"* service {namespace}/{name}: LoadBalancer address still pending; showing its node ports",
              file=sys.stderr, flush=True)
    return service


# ----- pure decisions ---------------------------------------------------------------------------


def check_exposed(service: Obj) -> None:
    spec = service.get("spec") or {}
    if spec.get("type", "ClusterIP") in EXPOSED_TYPES:
        return
    meta = service.get("metadata") or {}
    raise ServiceError(f"service {meta.get('namespace')}/{meta.get('name')} has no node port: it is of "
                       f"type {spec.get('type', 'ClusterIP')}. Expose it with `--type=NodePort` or "
                       "`--type=LoadBalancer` (kubectl expose / kubectl patch), or reach it with "
                       f"`kubelite kubectl -- port-forward -n {meta.get('namespace')} "
                       f"service/{meta.get('name')} LOCAL_PORT:PORT`")


def lb_pending(service: Obj) -> bool:
    return (service.get("spec") or {}).get("type") == "LoadBalancer" and not lb_addresses(service)


def lb_addresses(service: Obj) -> list[str]:
    ingress = ((service.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
    return [str(entry.get("ip") or entry.get("hostname")) for entry in ingress
            if entry.get("ip") or entry.get("hostname")]


def has_ready_endpoint(slices: list[Obj]) -> bool:
    """Any endpoint with an address whose `ready` condition is not false (unset means ready,
    as the EndpointSlice API says)."""
    return any(endpoint.get("addresses") and (endpoint.get("conditions") or {}).get("ready") is not False
               for s in slices for endpoint in s.get("endpoints") or [])


def node_address(nodes: list[Obj]) -> str | None:
    """The InternalIP (else ExternalIP) of the first Ready node, by name."""
    for node in sorted(nodes, key=lambda n: str((n.get("metadata") or {}).get("name"))):
        status = node.get("status") or {}
        if not any(c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or []):
            continue
        addresses = {a.get("type"): a.get("address") for a in status.get("addresses") or []}
        address = addresses.get("InternalIP") or addresses.get("ExternalIP")
        if address:
            return str(address)
    return None


def service_urls(service: Obj, nodes: list[Obj], *, scheme: str = "http") -> list[ServiceURL]:
    """LoadBalancer URLs first (each port at each ingress address), then NodePort URLs."""
    ports = (service.get("spec") or {}).get("ports") or []
    urls = [ServiceURL(port_label(port), f"{scheme}://{_host(address)}:{port['port']}")
            for address in lb_addresses(service) for port in ports]
    node = node_address(nodes)
    if node is not None:
        urls += [ServiceURL(port_label(port), f"{scheme}://{_host(node)}:{port['nodePort']}")
                 for port in ports if port.get("nodePort")]
    return urls


def port_label(port: Obj) -> str:
    return f"{port['name']}/{port['port']}" if port.get("name") else str(port["port"])


def _host(address: str) -> str:
    return f"[{address}]" if ":" in address else address


def table(namespace: str, name: str, urls: list[ServiceURL]) -> str:
    """minikube's table: centred headers, numbers right-aligned, one line per URL (the namespace
    and name only on the first, as a multi-line cell prints)."""
    rows = [[namespace if i == 0 else "", name if i == 0 else "", u.port, u.url] for i, u in enumerate(urls)]
    head = ["NAMESPACE", "NAME", "TARGET PORT", "URL"]
    widths = [max(len(cell) for cell in column) for column in zip(head, *rows, strict=True)]
    rule = "|" + "|".join("-" * (w + 2) for w in widths) + "|\n"

    def line(cells: list[str], align: Any) -> str:
        return "|" + "|".join(f" {align(cell, w)} " for cell, w in zip(cells, widths, strict=True)) + "|\n"

    def centre(cell: str, width: int) -> str:
        left = (width - len(cell)) // 2
        return " " * left + cell + " " * (width - len(cell) - left)

    def natural(cell: str, width: int) -> str:
        return cell.rjust(width) if cell.isdigit() else cell.ljust(width)

    return rule + line(head, centre) + rule + "".join(line(row, natural) for row in rows) + rule


def _open_browser(service: str, url: str) -> None:
    if not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        print(f"* no browser: open {url}")
        return
    import webbrowser

    print(f"* Opening service {service} in default browser...")
    if not webbrowser.open(url):
        print(f"* no browser could be started: open {url}")
