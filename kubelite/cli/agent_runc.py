"""`kubelite agent --runtime runc` (and `--cleanup`): a host whose pods are runc containers.

Start-up, failing fast with what to do at each step: preflight (root, runc, conmon, iproute2,
util-linux, CNI plugins: `kubelite.agent.hostnode.preflight`), the data dir's lock (one agent per
data dir), the streaming server's TLS material, the node's credentials, its InternalIP; then the
runtime on `<data-dir>/runtime` (which recovers the pods a previous agent left running), the image
store on `<data-dir>/images`, and the kubelet with its volumes under `<data-dir>/kubelet` (it hears
of container exits through the runtime's hook and, once registered, removes the pods deleted
while no agent ran). SIGTERM stops the kubelet and leaves the containers running.

`--cleanup` removes every pod the runtime holds and every pod volume (nothing is asked of the API
server), then the pods' bridge if nothing else uses it.
"""

from __future__ import annotations

import argparse
import fcntl
import logging
import os
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any
from urllib.parse import urlparse

from kubelite.cli.agent import fail, node_connection, serve, tls_source

if TYPE_CHECKING:
    from kubelite.agent.hostnode import NodePaths
    from kubelite.agent.runtime.runc import RuncConfig, RuncRuntime
    from kubelite.images.api import ImageRecord

log = logging.getLogger("kubelite.agent")
LOCK_NAME = "agent.lock"
VXLAN_MTU = 1450  # pods behind a VXLAN overlay: 1500 minus the 50 bytes of encapsulation


class DataDirBusy(Exception):
    pass


def lock_data_dir(data_dir: Path) -> IO[str]:
    """An exclusive lock on the data dir for this process's lifetime (the open file holds it)."""
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    handle = open(data_dir / LOCK_NAME, "a+")  # noqa: SIM115 - held until the process exits
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip() or "?"
        handle.close()
        raise DataDirBusy(f"another kubelite agent (pid {holder}) is using {data_dir}") from None
    handle.seek(0)
    handle.truncate()
    handle.write(f"{os.getpid()}\n")
    handle.flush()
    return handle


def runc_config(args: argparse.Namespace, paths: NodePaths) -> RuncConfig:
    from kubelite.agent.runtime.runc import RuncConfig
    from kubelite.agent.runtime.runc.cni import CniSettings
    from kubelite.agent.runtime.runc.sandbox import SandboxSettings

    dns = tuple(s.strip() for s in str(args.cluster_dns).split(",") if s.strip())
    return RuncConfig(root=paths.runtime, log_root=paths.logs, runc=args.runc, conmon=args.conmon,
                      cni=CniSettings(bridge=args.cni_bridge, bin_dir=Path(args.cni_bin_dir),
                                      mtu=VXLAN_MTU if getattr(args, "pod_routes", "") == "vxlan" else None),
                      sandbox=SandboxSettings(netns_prefix=args.netns_prefix, cgroup_parent=args.cgroup_parent,
                                              cluster_dns=dns, cluster_domain=args.cluster_domain))


def _preflight(args: argparse.Namespace) -> list[str]:
    from kubelite.agent.hostnode import probe_preflight

    return probe_preflight(runc=args.runc, conmon=args.conmon, cni_dir=Path(args.cni_bin_dir))


def run_runc(args: argparse.Namespace) -> int:
    from kubelite.agent.config import NodeConfig
    from kubelite.agent.hostnode import NodePaths, host_capacity, probe_node_ip

    problems = _preflight(args)
    if problems:
        return fail("the runc runtime cannot run here:\n  - " + "\n  - ".join(problems))
    paths = NodePaths(Path(args.data_dir).absolute())
    try:
        lock = lock_data_dir(paths.data_dir)
    except DataDirBusy as exc:
        return fail(str(exc))
    tls = tls_source(args)
    if tls is None:
        return fail("the streaming server needs a serving certificate: give --pki-dir (the cluster PKI, "
                    "on the server's host) or --tls-cert-file, --tls-private-key-file and --client-ca-file "
                    "(made by `python -m kubelite.cluster.nodecreds`)")
    conn = node_connection(args, paths)
    api_host = urlparse(conn.base_url).hostname or ""
    node_ip = args.node_ip or probe_node_ip(api_host, skip_links=[args.cni_bridge])
    if not node_ip:
        return fail("found no address for this node (no global IPv4 address): give --node-ip")
    measured = host_capacity(paths.data_dir)
    node = NodeConfig(name=args.name, internal_ip=node_ip, cpu=args.cpu or measured.cpu,
                      memory=args.memory or measured.memory, ephemeral_storage=measured.ephemeral_storage,
                      pods=args.max_pods, kubelet_port=args.streaming_port)
    try:
        _serve_runc(args, paths, conn, node, tls)
    finally:
        lock.close()
    return 0


def _serve_runc(args: argparse.Namespace, paths: NodePaths, conn: Any, node: Any, tls: Any) -> None:
    from kubelite.agent.runtime.runc import RuncRuntime
    from kubelite.images.distribution.node import node_images
    from kubelite.images.distribution.registries import RegistryConfigError
    from kubelite.images.store import ImageStore

    try:  # the store, able to pull with the node's registry settings
        images = node_images(ImageStore(args.images_dir or paths.images), data_dir=paths.data_dir,
                             config_path=args.registries_config, insecure=args.insecure_registry,
                             mirrors=args.registry_mirror, only=args.pull_only_from)
    except RegistryConfigError as exc:
        raise SystemExit(f"error: {exc}") from None

    def make_runtime() -> RuncRuntime:
        return RuncRuntime(runc_config(args, paths), images)

    async def on_stop(runtime: RuncRuntime) -> None:
        await runtime.close()

    serve(lambda: conn, node, make_runtime, args=args, tls=tls, log=log, on_stop=on_stop,
          root_dir=str(paths.kubelet), services=lambda client: node_services(client, args, node))


class ProxyService:
    """The node's Service proxy as an agent service (its rules go when the agent stops)."""

    def __init__(self, proxier: Any) -> None:
        self.proxier = proxier

    async def start(self) -> None:
        self.proxier.start()

    async def stop(self) -> None:
        await self.proxier.stop()


def node_services(client: Any, args: argparse.Namespace, node: Any) -> list[Any]:
    """What runs beside the kubelet: the Service proxy (nftables, else userspace) and the routes
    to the other nodes' pods."""
    services: list[Any] = []
    if args.proxy != "none":
        from kubelite.proxy.proxier import Proxier

        services.append(ProxyService(Proxier(client, node_name=node.name, node_ips=[node.internal_ip],
                                             backend=args.proxy, cluster_cidr=args.cluster_cidr,
                                             table=args.proxy_table)))
    if args.pod_routes != "none":
        from kubelite.agent.network.component import NodeRoutes

        services.append(NodeRoutes(client, node_name=node.name, mode=args.pod_routes))
    return services


class _NoImages:
    """Cleanup starts containers never, so it needs no image store."""

    def get(self, reference: str) -> ImageRecord:
        from kubelite.images.api import ImageNotFound

        raise ImageNotFound(reference)

    def list(self) -> list[ImageRecord]:
        return []


def run_cleanup(args: argparse.Namespace) -> int:
    import asyncio

    from kubelite.agent.hostnode import NodePaths, remove_bridge_if_unused, remove_pods, remove_volumes
    from kubelite.agent.runtime.runc import RuncRuntime

    if os.geteuid() != 0:
        return fail("--cleanup needs root (it removes namespaces, mounts and cgroups)")
    paths = NodePaths(Path(args.data_dir).absolute())
    if not paths.runtime.exists():
        print(f"nothing to clean up in {paths.data_dir}")
        return 0
    try:
        lock = lock_data_dir(paths.data_dir)
    except DataDirBusy as exc:
        return fail(f"{exc}: stop it first")

    async def body() -> tuple[int, list[str]]:
        runtime = RuncRuntime(runc_config(args, paths), _NoImages())
        uids = runtime.pod_uids()
        try:
            errors = await remove_pods(runtime, uids)
        finally:
            await runtime.close()
        return len(uids), errors + await remove_volumes(paths.kubelet)

    try:
        count, errors = asyncio.run(body())
    finally:
        lock.close()
    bridge = " and the bridge " + args.cni_bridge if remove_bridge_if_unused(args.cni_bridge) else ""
    print(f"removed {count - len(errors)} of {count} pod(s){bridge}")
    for error in errors:
        print(f"error: {error}")
    return 1 if errors else 0
