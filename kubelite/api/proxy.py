"""pods/log, pods/exec, pods/attach and pods/portforward: proxied to the node agent that runs the
pod (upstream's LogLocation / ExecLocation / PortForwardLocation plus the upgrade-aware proxy).

Flow: read the pod, check the container as upstream's API server does (messages included), find
the node's address (InternalIP first) and its agent's port (status.daemonEndpoints.
kubeletEndpoint.Port), then call the agent's own HTTPS endpoint with the API server's client
certificate (CN `kube-apiserver-kubelet-client`, issued from the cluster CA; the agent's serving
certificate is verified against the same CA).

- logs: a plain GET; the agent's body streams back chunk by chunk (a followed log ends when the
  agent ends it, or when kubectl leaves);
- exec/attach/port-forward: WebSocket only. The API server does not terminate kubectl's
  protocols: it opens a WebSocket to the agent offering the same subprotocols
  (`v5.channel.k8s.io`; `SPDY/3.1+portforward.k8s.io`), accepts kubectl's with the one the agent
  chose, and relays messages one for one in both directions, close codes included. The agent is
  the only implementation of the channel protocol and SPDY, and message boundaries survive the
  hop. If the agent refuses the upgrade, its reason (a Status) is fetched with a plain GET of the
  same URL (the agent validates before it looks for an upgrade) and returned to kubectl.
  Requests without `Upgrade` get 400 "Upgrade request required"; SPDY upgrades (kubectl's
  fallback) get the agent's validation error, else a 400 saying only WebSocket is served.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import ssl
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import aiohttp
from aiohttp import WSMsgType, web

from kubelite.api.objectmeta import Obj
from kubelite.api.requestinfo import ResourceRequest
from kubelite.lib.httpstreams import until_disconnected
from kubelite.objects.errors import (
    BadRequest,
    Cause,
    InternalError,
    MethodNotAllowed,
    ServiceUnavailable,
    StatusError,
    invalid,
)

KUBELET_CLIENT_CN = "kube-apiserver-kubelet-client"
ADDRESS_PREFERENCE = ("InternalIP", "Hostname", "InternalDNS", "ExternalIP", "ExternalDNS")
CONNECT_TIMEOUT = 10.0
LOG_INT_OPTIONS = {"tailLines": 0, "limitBytes": 1, "sinceSeconds": 1}  # name -> minimum
LOG_PASS = ("follow", "tailLines", "sinceSeconds", "sinceTime", "timestamps", "previous", "limitBytes")


# ----- pure decisions ----------------------------------------------------------------------------

def pod_container(pod: Obj, requested: str | None) -> str:
    """The container a log/exec/attach addresses; upstream's defaulting and messages."""
    name = pod["metadata"]["name"]
    spec = pod.get("spec") or {}
    containers = [str(c.get("name")) for c in spec.get("containers") or []]
    init = [str(c.get("name")) for c in spec.get("initContainers") or []]
    ephemeral = [str(c.get("name")) for c in spec.get("ephemeralContainers") or []]
    if not requested:
        if len(containers) == 1:
            return containers[0]
        message = f"a container name must be specified for pod {name}, choose one of: [{' '.join(containers)}]"
        if init:
            message += f" or one of the init containers: [{' '.join(init)}]"
        raise BadRequest(message)
    if requested not in containers + init + ephemeral:
        raise BadRequest(f"container {requested} is not valid for pod {name}")
    return requested


def node_endpoint(node: Obj) -> tuple[str, int]:
    """(address, port) of a node's agent; 503 when the node advertises none."""
    name = node["metadata"]["name"]
    status = node.get("status") or {}
    addresses = {a.get("type"): a.get("address") for a in status.get("addresses") or [] if a.get("address")}
    host = next((addresses[t] for t in ADDRESS_PREFERENCE if t in addresses), None)
    port = ((status.get("daemonEndpoints") or {}).get("kubeletEndpoint") or {}).get("Port")
    if not host or not isinstance(port, int) or not 0 < port < 65536:
        raise ServiceUnavailable(f"node {name} does not advertise an address and kubelet port")
    return host, port


def check_log_options(query: Any, pod_name: str) -> None:
    causes = []
    for option, minimum in LOG_INT_OPTIONS.items():
        if option not in query:
            continue
        try:
            value = int(query[option])
        except ValueError:
            raise BadRequest(f"{option}: invalid integer {query[option]!r}") from None
        if value < minimum:
            bound = "greater than or equal to 0" if minimum == 0 else "greater than 0"
            causes.append(Cause("FieldValueInvalid", f"Invalid value: {value}: must be {bound}", option))
    if query.get("sinceSeconds") and query.get("sinceTime"):
        causes.append(Cause("FieldValueForbidden", "Forbidden: at most one of `sinceTime` or `sinceSeconds` "
                            "may be specified", ""))
    if causes:
        raise invalid("PodLogOptions", pod_name, causes)


def _truthy(value: str | None) -> bool:
    return (value or "").lower() in ("true", "1")


def agent_path(subresource: str, pod: Obj, container: str, query: Any) -> str:
    """The agent's URL path and query for a pod subresource request."""
    meta = pod["metadata"]
    ns, name, uid = (quote(str(meta[k]), safe="") for k in ("namespace", "name", "uid"))
    if subresource == "log":
        params = [(k, query[k]) for k in LOG_PASS if query.get(k)]
        return f"/containerLogs/{ns}/{name}/{quote(container, safe='')}?{urlencode(params)}"
    if subresource == "portforward":
        return f"/portForward/{ns}/{name}/{uid}"
    params = [("command", c) for c in query.getall("command", [])] if subresource == "exec" else []
    for api_name, kubelet_name in (("stdin", "input"), ("stdout", "output"), ("stderr", "error"), ("tty", "tty")):
        if _truthy(query.get(api_name)):
            params.append((kubelet_name, "1"))
    verb = "exec" if subresource == "exec" else "attach"
    return f"/{verb}/{ns}/{name}/{uid}/{quote(container, safe='')}?{urlencode(params)}"


def status_from_body(code: int, body: bytes) -> StatusError | Obj:
    """An agent's error answer as a Status dict (it sends Status JSON) or an InternalError."""
    try:
        status = json.loads(body)
    except ValueError:
        status = None
    if isinstance(status, dict) and status.get("kind") == "Status":
        return status
    text = body.decode(errors="replace").strip() or f"HTTP {code}"
    return InternalError(f"error from the node agent: {text}")


# ----- credentials -------------------------------------------------------------------------------

class KubeletCredentials:
    """The API server's TLS client identity towards node agents, made once per process."""

    def __init__(self, pki_dir: Path) -> None:
        self.pki_dir = pki_dir
        self._context: ssl.SSLContext | None = None

    def context(self) -> ssl.SSLContext:
        if self._context is None:
            from kubelite.cluster.pki import Pki, issue_client_cert
            from kubelite.lib.tlsfiles import load_cert_chain

            pki = Pki.at(self.pki_dir)
            if not pki.ca_key.exists():
                raise ServiceUnavailable("the API server has no cluster CA (TLS is off), so it cannot "
                                         "authenticate to node agents")
            cert, key = issue_client_cert(pki, common_name=KUBELET_CLIENT_CN, organizations=[])
            context = ssl.create_default_context(cadata=pki.ca_pem().decode())
            load_cert_chain(context, cert, key)
            self._context = context
        return self._context


_CREDENTIALS: dict[Path, KubeletCredentials] = {}


def credentials_for(data_dir: Path) -> KubeletCredentials:
    pki_dir = Path(data_dir) / "pki"
    return _CREDENTIALS.setdefault(pki_dir, KubeletCredentials(pki_dir))


# ----- the handler -------------------------------------------------------------------------------

class NodeProxy:
    def __init__(self, api: Any) -> None:
        self.api = api

    async def handle(self, request: web.Request, rr: ResourceRequest) -> web.StreamResponse:
        sub = str(rr.subresource)
        url = await self._agent_url(request, rr, sub)
        if url is None:
            return web.Response(body=b"", content_type="text/plain")  # not scheduled: nothing ran, no log
        data_dir = self.api.data_dir
        if data_dir is None:
            raise ServiceUnavailable("this API server cannot reach node agents")
        context = credentials_for(data_dir).context()
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=CONNECT_TIMEOUT)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            if sub == "log":
                return await _proxy_log(request, session, url, context)
            if request.headers.get("Upgrade", "").lower() != "websocket":
                return await _refuse_spdy(session, url, context)
            return await _proxy_websocket(request, session, url, context)

    async def _agent_url(self, request: web.Request, rr: ResourceRequest, sub: str) -> str | None:
        """Validate the request as upstream does, in its order; the agent URL to call (None: a log
        of a pod that has no node yet)."""
        if request.method not in (("GET",) if sub == "log" else ("GET", "POST")):
            raise MethodNotAllowed(f"{request.method} is not supported on pods/{sub}")
        pod = await self.api.core("pods").get(rr.namespace, rr.name)
        name = pod["metadata"]["name"]
        container = "" if sub == "portforward" else pod_container(pod, request.query.get("container"))
        if sub == "log":
            check_log_options(request.query, name)
        elif "upgrade" not in request.headers.get("Connection", "").lower() or not request.headers.get("Upgrade"):
            raise BadRequest("Upgrade request required")
        node_name = (pod.get("spec") or {}).get("nodeName")
        if not node_name:
            if sub == "log":
                return None
            raise BadRequest(f"pod {name} does not have a host assigned")
        host, port = node_endpoint(await self.api.core("nodes").get(None, node_name))
        return f"https://{_host(host)}:{port}{agent_path(sub, pod, container, request.query)}"


def _host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def _error_response(error: StatusError | Obj, code: int) -> web.Response:
    if isinstance(error, StatusError):
        return web.json_response(error.to_status(), status=error.code)
    return web.json_response(error, status=int(error.get("code") or code))


def _dial_error(exc: Exception) -> StatusError:
    return InternalError(f"error dialing backend: {exc}")


async def _proxy_log(request: web.Request, session: aiohttp.ClientSession, url: str,
                     context: ssl.SSLContext) -> web.StreamResponse:
    try:
        upstream = await session.get(url, ssl=context)
    except aiohttp.ClientError as exc:
        raise _dial_error(exc) from None
    async with upstream:
        if upstream.status != 200:
            return _error_response(status_from_body(upstream.status, await upstream.read()), upstream.status)
        response = web.StreamResponse(headers={"Content-Type": "text/plain"})
        await response.prepare(request)

        async def copy() -> None:
            async for chunk in upstream.content.iter_any():
                await response.write(chunk)

        with contextlib.suppress(ConnectionError, aiohttp.ClientError):
            await until_disconnected(request, copy())
            await response.write_eof()
        return response


async def _probe(session: aiohttp.ClientSession, url: str, context: ssl.SSLContext) -> tuple[int, bytes]:
    """A plain GET of an upgrade URL: the agent validates the request and answers why it would fail."""
    try:
        async with session.get(url, ssl=context) as response:
            return response.status, await response.read()
    except aiohttp.ClientError as exc:
        raise _dial_error(exc) from None


async def _refuse_spdy(session: aiohttp.ClientSession, url: str, context: ssl.SSLContext) -> web.Response:
    code, body = await _probe(session, url, context)
    error = status_from_body(code, body)
    if isinstance(error, dict) and not (code == 400 and error.get("message") == "Upgrade request required"):
        return _error_response(error, code)
    return _error_response(BadRequest("this server streams over WebSocket only (v5.channel.k8s.io, "
                                      "SPDY/3.1+portforward.k8s.io); SPDY upgrades are not supported"), 400)


async def _proxy_websocket(request: web.Request, session: aiohttp.ClientSession, url: str,
                           context: ssl.SSLContext) -> web.StreamResponse:
    offered = [p.strip() for p in request.headers.get("Sec-WebSocket-Protocol", "").split(",") if p.strip()]
    try:
        upstream = await session.ws_connect(url, protocols=offered, ssl=context, max_msg_size=0, autoping=True)
    except aiohttp.WSServerHandshakeError:
        code, body = await _probe(session, url, context)
        return _error_response(status_from_body(code, body), code if code >= 400 else 502)
    except aiohttp.ClientError as exc:
        raise _dial_error(exc) from None
    async with upstream:
        protocols = (upstream.protocol,) if upstream.protocol else ()
        downstream = web.WebSocketResponse(protocols=protocols, max_msg_size=0, autoping=True)
        await downstream.prepare(request)
        await _relay(downstream, upstream)
        return downstream


# close codes that mean "no close frame came" and must never be sent in one (RFC 6455 7.4.1)
_RESERVED_CLOSE_CODES = (1005, 1006, 1015)


def relayed_close_code(received: int | None) -> int:
    """The code to close the other side with: the one the closing side sent in its close frame
    (not `close_code`, which aiohttp overwrites with 1006 when its close reply fails because the
    peer already dropped the connection); 1011 when no close frame came."""
    if received is None or received in _RESERVED_CLOSE_CODES:
        return 1011
    return received


async def _relay(client: web.WebSocketResponse, agent: aiohttp.ClientWebSocketResponse) -> None:
    """Copy messages both ways; when one side closes, close the other with the same code."""

    async def pump(source: Any, sink: Any) -> None:
        received: int | None = None
        while True:
            message = await source.receive()
            if message.type == WSMsgType.BINARY:
                await sink.send_bytes(message.data)
            elif message.type == WSMsgType.TEXT:
                await sink.send_str(message.data)
            elif message.type == WSMsgType.CLOSE:
                received = int(message.data)
                break
            elif message.type in (WSMsgType.CLOSING, WSMsgType.CLOSED, WSMsgType.ERROR):
                break
        with contextlib.suppress(ConnectionError, RuntimeError):
            await sink.close(code=relayed_close_code(received))

    tasks = [asyncio.create_task(pump(client, agent)), asyncio.create_task(pump(agent, client))]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        await asyncio.wait(tasks, timeout=5)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
