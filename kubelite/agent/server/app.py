"""The node agent's HTTPS streaming server (the kubelet's port 10250, streaming part).

    GET  /containerLogs/<ns>/<pod>/<container>?follow&tailLines&sinceSeconds&sinceTime&timestamps&previous&limitBytes
    GET  /exec/<ns>/<pod>[/<uid>]/<container>?command=..&input=1&output=1&error=1&tty=1   (WebSocket v5)
    GET  /attach/<ns>/<pod>[/<uid>]/<container>?input=1&output=1&error=1&tty=1            (WebSocket v5)
    GET  /portForward/<ns>/<pod>[/<uid>]                                    (WebSocket, SPDY/3.1 inside)
    GET  /healthz

Only the API server may call it: requests must carry a client certificate from the cluster CA
whose CN is the API server's kubelet-client identity (or the server's internal identity); no
certificate is 401, another identity 403. Errors are metav1 Status JSON, which the API server
passes on to kubectl.

A server serves the pods of the kubelet that starts it (`Kubelet.register` calls `start`), or of
any `PodSource` given to it (several hollow kubelets can share one).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from kubelite.agent.server.certs import TlsSource
from kubelite.agent.server.logs import serve_logs
from kubelite.agent.server.portforward import serve_port_forward
from kubelite.agent.server.remotecommand import serve_remote_command
from kubelite.agent.server.targets import KubeletPods, PodSource
from kubelite.objects.errors import Forbidden, InternalError, StatusError, Unauthorized

if TYPE_CHECKING:
    from kubelite.agent.kubelet import Kubelet

log = logging.getLogger(__name__)

API_SERVER_CLIENT = "kube-apiserver-kubelet-client"
INTERNAL_CLIENT = "system:kubelite-server"
ALLOWED_CLIENTS = (API_SERVER_CLIENT, INTERNAL_CLIENT)
PUBLIC_PATHS = ("/healthz",)


def peer_common_name(request: web.Request) -> str | None:
    """CN of the verified client certificate (the TLS layer verified it against the CA)."""
    transport = request.transport
    cert = transport.get_extra_info("peercert") if transport is not None else None
    for rdn in (cert or {}).get("subject", ()):
        for key, value in rdn:
            if key == "commonName":
                return str(value)
    return None


def _status(error: StatusError) -> web.Response:
    return web.json_response(error.to_status(), status=error.code)


def auth_middleware(allowed: Iterable[str]) -> Middleware:
    allowed_set = frozenset(allowed)

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path not in PUBLIC_PATHS:
            user = peer_common_name(request)
            if user is None:
                return _status(Unauthorized("Unauthorized"))
            if user not in allowed_set:
                return _status(Forbidden(f'Forbidden (user={user}, verb={request.method.lower()}, '
                                         f'resource=nodes, subresource=proxy)'))
        return await handler(request)

    return middleware


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except StatusError as exc:
        return _status(exc)
    except web.HTTPException:
        raise
    except Exception:
        log.exception("streaming server: error serving %s %s", request.method, request.path)
        return _status(InternalError("an internal error occurred; the agent log has the details"))


def build_app(source: PodSource, *, allowed: Iterable[str] = ALLOWED_CLIENTS) -> web.Application:
    app = web.Application(middlewares=[error_middleware, auth_middleware(allowed)])

    async def healthz(request: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def logs(request: web.Request) -> web.StreamResponse:
        return await serve_logs(request, source)

    async def exec_(request: web.Request) -> web.StreamResponse:
        return await serve_remote_command(request, source, attach=False)

    async def attach(request: web.Request) -> web.StreamResponse:
        return await serve_remote_command(request, source, attach=True)

    async def port_forward(request: web.Request) -> web.StreamResponse:
        return await serve_port_forward(request, source)

    app.router.add_get("/healthz", healthz)
    app.router.add_get("/containerLogs/{namespace}/{pod}/{container}", logs)
    for verb, handler in (("exec", exec_), ("attach", attach)):
        app.router.add_route("*", f"/{verb}/{{namespace}}/{{pod}}/{{container}}", handler)
        app.router.add_route("*", f"/{verb}/{{namespace}}/{{pod}}/{{uid}}/{{container}}", handler)
    app.router.add_route("*", "/portForward/{namespace}/{pod}", port_forward)
    app.router.add_route("*", "/portForward/{namespace}/{pod}/{uid}", port_forward)
    return app


class StreamingServer:
    """Serves one kubelet's pods (or `source`'s) on `host:port`; port None = the node's
    configured kubelet port, 0 = any free port (the Node then advertises the one bound)."""

    def __init__(self, *, tls: TlsSource, host: str = "0.0.0.0", port: int | None = None,
                 source: PodSource | None = None, allowed: Iterable[str] = ALLOWED_CLIENTS) -> None:
        self.tls, self.host, self.port = tls, host, port
        self.source, self.allowed = source, tuple(allowed)
        self._runner: web.AppRunner | None = None

    async def start(self, kubelet: Kubelet) -> int:
        """Listen, and make the kubelet advertise the port bound (its Node's
        status.daemonEndpoints.kubeletEndpoint.Port comes from `node_config.kubelet_port`)."""
        if self._runner is None:
            await self._listen(kubelet)
        kubelet.node_config = dataclasses.replace(kubelet.node_config, kubelet_port=int(self.port or 0))
        return int(self.port or 0)

    async def _listen(self, kubelet: Kubelet) -> None:
        source = self.source or KubeletPods(lambda: [kubelet])
        port = kubelet.node_config.kubelet_port if self.port is None else self.port
        runner = web.AppRunner(build_app(source, allowed=self.allowed), access_log=None, shutdown_timeout=1.0)
        await runner.setup()
        site = web.TCPSite(runner, self.host, port, ssl_context=self.tls(kubelet.node_config), reuse_address=True)
        try:
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        self.port = int(runner.addresses[0][1])
        log.info("node %s: streaming server on %s:%s", kubelet.name, self.host, self.port)

    @property
    def open_connections(self) -> int:
        """Connections being served now (each stream holds one)."""
        server = self._runner.server if self._runner is not None else None
        return len(server.connections) if server is not None else 0

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
