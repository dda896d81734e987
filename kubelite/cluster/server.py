"""Start the server components in order: store, PKI, API (and, later, controllers and scheduler).

`ServerRuntime` owns everything it starts and stops it in reverse order; `kubelite server` runs
one in the foreground, and integration tests run one in-process on a free port.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

from kubelite.cluster.config import ServerConfig
from kubelite.lib.net import is_ip

log = logging.getLogger(__name__)


@dataclass
class ServerRuntime:
    config: ServerConfig
    runner: web.AppRunner | None = None
    store: Any = None
    api: Any = None
    tasks: list[asyncio.Task[Any]] = field(default_factory=list)
    admin_kubeconfig: Path | None = None
    socket_path: Path | None = None
    url: str = ""
    internal_client: Any = None
    electors: list[Any] = field(default_factory=list)
    dns: Any = None
    host_proxy: Any = None
    host_routes: Any = None
    registry: Any = None

    async def start(self) -> None:
        from kubelite.api.auth import AllowAuthenticated, Authenticator, TokenFile, auth_middleware
        from kubelite.api.server import build_api, build_app, compact_forever, ensure_system_objects_task
        from kubelite.store import open_store

        self.config.data_dir.mkdir(parents=True, exist_ok=True)
        self.store = open_store(self.config.datastore_url)
        self.api = build_api(self.store, self.config)
        await ensure_system_objects_task(self.api, self.config)
        middlewares = []
        ssl_context = None
        if self.config.tls:
            ssl_context = self._prepare_credentials()
            tokens = TokenFile(self.config.data_dir / "tokens.csv")
            middlewares.append(auth_middleware(Authenticator(tokens), AllowAuthenticated()))
        app = build_app(self.api, self.config, middlewares=middlewares)
        self.runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self.runner.setup()
        site = web.TCPSite(self.runner, self.config.bind_address, self.config.port, ssl_context=ssl_context,
                           reuse_address=True)
        await site.start()
        await self._listen_on_advertise_address(ssl_context)
        self.socket_path = self.config.data_dir / "run" / "api.sock"
        self.socket_path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.socket_path.unlink(missing_ok=True)
        await web.UnixSite(self.runner, str(self.socket_path)).start()
        self.socket_path.chmod(0o600)
        scheme = "https" if ssl_context else "http"
        self.url = f"{scheme}://{self.config.bind_address}:{self.config.port}"
        if self.config.tls:
            self._write_admin_kubeconfig()
        self.tasks.append(asyncio.create_task(compact_forever(self.store, self.config), name="compaction"))
        log.info("API server listening on %s", self.url)
        self._start_control_loops()
        if self.config.dns:
            await self._start_dns()
        if self.config.registry:
            await self._start_registry()
        if self.config.host_network:
            await self._start_host_network()

    async def _start_dns(self) -> None:
        """The cluster DNS on every server (no leader lease: each answers from its own caches). A
        listen address in use is logged, not fatal: the API matters more than a second DNS."""
        from kubelite.dns.server import DnsServer, parse_listen

        upstreams = (list(self.config.dns_upstreams) or None) if self.config.dns_forward else []
        self.dns = DnsServer(self.internal_client, listen=parse_listen(self.config.dns_listen),
                             zone=self.config.cluster_domain, dns_ip=self.config.dns_service_ip,
                             upstreams=upstreams)
        try:
            await self.dns.start()
        except OSError as exc:
            log.error("cluster DNS not started: %s", exc)
            await self.dns.stop()
            return
        from kubelite.dns.endpoints import publish

        try:
            await publish(self.internal_client, self.dns.addresses, owner=_label_safe(socket.gethostname()))
        except Exception as exc:  # the DNS still answers on the host; pods just cannot reach it yet
            log.error("kube-dns endpoints not published: %s", exc)

    async def _start_registry(self) -> None:
        """The cluster's image registry (minikube's registry add-on). A listen address in use is
        logged, not fatal: the cluster works without it."""
        from kubelite.images.registry.rules import parse_listen
        from kubelite.images.registry.server import RegistryServer

        try:
            registry = RegistryServer(self.config.data_dir / "registry", parse_listen(self.config.registry_listen))
            await registry.start()
        except (OSError, ValueError) as exc:
            log.error("image registry not started: %s", exc)
            return
        self.registry = registry

    async def _start_host_network(self) -> None:
        """On the machine whose nodes are local network namespaces: the Service proxy for traffic
        the host itself sends (ClusterIPs and LoadBalancer addresses answer from the host), and
        routes to every node's pod CIDR (the host reaches every pod)."""
        from kubelite.proxy.proxier import Proxier

        self.host_proxy = Proxier(self.internal_client, node_name="", cluster_cidr=self.config.cluster_cidr,
                                  service_cidr=self.config.service_cidr, table=self.config.host_proxy_table)
        self.host_proxy.start()
        from kubelite.agent.network.component import NodeRoutes

        self.host_routes = NodeRoutes(self.internal_client, node_name=None, proto=self.config.host_routes_proto)
        await self.host_routes.start()

    async def _listen_on_advertise_address(self, ssl_context: Any) -> None:
        """Also serve on the advertised address when it is this host's (nodes in their own network
        namespaces reach the API there) and the bind address does not already cover it."""
        address = self.config.advertise_address
        if self.config.bind_address in ("0.0.0.0", "", address) or not is_ip(address):
            return
        assert self.runner is not None
        try:
            await web.TCPSite(self.runner, address, self.config.port, ssl_context=ssl_context,
                              reuse_address=True).start()
            log.info("API server also listening on %s:%d", address, self.config.port)
        except OSError as exc:  # not an address of this host: nothing to do
            log.debug("not listening on %s: %s", address, exc)

    def _start_control_loops(self) -> None:
        """Controllers and scheduler, each under its own leader lease, talking to the API through
        the internal Unix socket as any other client would."""
        from kubelite.client import Client, Connection

        assert self.socket_path is not None
        self.internal_client = Client(Connection.unix(self.socket_path), user_agent="kubelite-server")
        if self.config.controllers:
            from kubelite.controllers.manager import ControllerManager, enabled_controllers

            manager = ControllerManager(self.internal_client, enabled_controllers(self.config.controllers),
                                        options=self.config)
            self._lead("kube-controller-manager", manager.run)
        if self.config.scheduler:
            from kubelite.scheduler import Scheduler

            scheduler = Scheduler(self.internal_client, options=self.config)
            self._lead("kube-scheduler", scheduler.run)

    def _lead(self, name: str, work: Any) -> None:
        from kubelite.client.leader import LeaderElector

        if not self.config.leader_elect:
            self.tasks.append(asyncio.create_task(work(), name=name))
            return
        identity = self.config.identity or f"{socket.gethostname()}_{os.getpid()}"
        elector = LeaderElector(self.internal_client, name, identity,
                                lease_duration=self.config.leader_lease_duration,
                                renew_deadline=self.config.leader_renew_deadline,
                                retry_period=self.config.leader_retry_period)
        self.electors.append(elector)
        self.tasks.append(asyncio.create_task(elector.run(work), name=f"leader:{name}"))

    def _prepare_credentials(self) -> Any:
        from kubelite.cluster.pki import ensure_pki, server_ssl_context

        ips = [self.config.bind_address, self.config.advertise_address, self.config.kubernetes_service_ip,
               *[s for s in self.config.extra_sans if is_ip(s)]]
        dns = [socket.gethostname(), *[s for s in self.config.extra_sans if not is_ip(s)]]
        self.pki = ensure_pki(self.config.data_dir / "pki", ip_sans=[ip for ip in ips if ip != "0.0.0.0"],
                              dns_sans=dns)
        return server_ssl_context(self.pki)

    def _write_admin_kubeconfig(self) -> None:
        from kubelite.cluster.kubeconfig import build_kubeconfig, write_kubeconfig

        host = "127.0.0.1" if self.config.bind_address in ("0.0.0.0", "") else self.config.bind_address
        config = build_kubeconfig(server=f"https://{host}:{self.config.port}", ca_pem=self.pki.ca_pem(),
                                  client_cert_pem=self.pki.admin_cert_pem(),
                                  client_key_pem=self.pki.admin_key_pem())
        self.admin_kubeconfig = self.config.data_dir / "admin.kubeconfig"
        write_kubeconfig(self.admin_kubeconfig, config)

    async def stop(self) -> None:
        if self.host_routes is not None:
            await self.host_routes.stop()
        if self.host_proxy is not None:
            await self.host_proxy.stop()
        if self.dns is not None:
            await self.dns.stop()
        if self.registry is not None:
            await self.registry.stop()
        for task in self.tasks:
            task.cancel()
        for task in self.tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self.runner is not None:
            await self.runner.cleanup()
        if self.internal_client is not None:
            await self.internal_client.close()
        if self.store is not None:
            await self.store.close()


def _label_safe(text: str) -> str:
    import re

    return re.sub(r"[^a-z0-9-]+", "-", text.lower()).strip("-")[:40] or "server"


async def serve_forever(config: ServerConfig) -> None:
    runtime = ServerRuntime(config)
    await runtime.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    import signal

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await runtime.stop()
