"""An async REST client for the Kubernetes API (ours or any other), over aiohttp.

Every component that is not the API server (controllers, scheduler, node agents, the CLI) talks to
the API through this client, exactly as kubectl does: HTTPS with a client certificate or a bearer
token, or a Unix socket for components inside the server process (only root can open it).

Failures arrive as the `StatusError` subclass named by the server's Status `reason`, so callers
handle `NotFound`, `Conflict`, `AlreadyExists` and friends without looking at HTTP codes.
"""

from __future__ import annotations

import base64
import json
import ssl
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import orjson

from kubelite.objects import errors
from kubelite.objects.registry import ResourceType

Obj = dict[str, Any]

PATCH_TYPES = {
    "json": "application/json-patch+json",
    "merge": "application/merge-patch+json",
    "strategic": "application/strategic-merge-patch+json",
    "apply": "application/apply-patch+yaml",
}

_BY_REASON: dict[str, type[errors.StatusError]] = {
    cls.reason: cls for cls in errors.StatusError.__subclasses__()  # type: ignore[misc]
}
_BY_REASON["Gone"] = errors.Gone


@dataclass(frozen=True)
class Connection:
    """Where the API is and who we are to it."""

    base_url: str
    ssl_context: ssl.SSLContext | None = None
    unix_socket: str | None = None
    token: str | None = None

    @classmethod
    def unix(cls, path: str | Path) -> Connection:
        return cls("http://localhost", unix_socket=str(path))

    @classmethod
    def from_kubeconfig(cls, path: str | Path, *, context: str | None = None) -> Connection:
        import yaml

        config = yaml.safe_load(Path(path).read_text())
        ctx_name = context or config.get("current-context")
        ctx = _named(config.get("contexts"), ctx_name)["context"]
        cluster = _named(config.get("clusters"), ctx["cluster"])["cluster"]
        user = _named(config.get("users"), ctx["user"])["user"] or {}
        server = cluster["server"]
        if not server.startswith("https://"):
            return cls(server, token=user.get("token"))
        context_obj = ssl.create_default_context(cadata=_pem(cluster, "certificate-authority").decode())
        if user.get("client-certificate-data") or user.get("client-certificate"):
            _load_client_cert(context_obj, _pem(user, "client-certificate"), _pem(user, "client-key"))
        return cls(server, ssl_context=context_obj, token=user.get("token"))


def _named(entries: list[Obj] | None, name: str) -> Obj:
    for entry in entries or []:
        if entry.get("name") == name:
            return entry
    raise ValueError(f"kubeconfig has no entry named {name!r}")


def _pem(section: Obj, field: str) -> bytes:
    if section.get(f"{field}-data"):
        return base64.b64decode(section[f"{field}-data"])
    return Path(section[field]).read_bytes()


def _load_client_cert(context: ssl.SSLContext, cert: bytes, key: bytes) -> None:
    # ssl can only load a certificate chain from files
    with tempfile.NamedTemporaryFile() as cert_file, tempfile.NamedTemporaryFile() as key_file:
        cert_file.write(cert)
        key_file.write(key)
        cert_file.flush()
        key_file.flush()
        context.load_cert_chain(cert_file.name, key_file.name)


def status_error(code: int, body: bytes) -> errors.StatusError:
    """The StatusError a response stands for (a non-Status body still gives a sensible class)."""
    try:
        status = orjson.loads(body)
    except orjson.JSONDecodeError:
        status = {}
    if not isinstance(status, dict):
        status = {}
    cls = _BY_REASON.get(str(status.get("reason")))
    if cls is None:
        cls = next((c for c in _BY_REASON.values() if c.code == code), errors.InternalError)
    message = status.get("message") or body.decode(errors="replace")[:500] or f"HTTP {code}"
    return cls(message, details=status.get("details") or {})


class Client:
    def __init__(self, connection: Connection, *, user_agent: str = "kubelite", max_connections: int = 64) -> None:
        self.connection = connection
        self.user_agent = user_agent
        self.max_connections = max_connections
        self._session: aiohttp.ClientSession | None = None

    def _get_session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            conn = self.connection
            connector: aiohttp.BaseConnector
            if conn.unix_socket:
                connector = aiohttp.UnixConnector(path=conn.unix_socket, limit=self.max_connections)
            else:
                connector = aiohttp.TCPConnector(ssl=conn.ssl_context or False, limit=self.max_connections)
            headers = {"User-Agent": self.user_agent, "Accept": "application/json"}
            if conn.token:
                headers["Authorization"] = f"Bearer {conn.token}"
            self._session = aiohttp.ClientSession(connector=connector, headers=headers,
                                                  timeout=aiohttp.ClientTimeout(total=None, sock_connect=10))
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def request(self, method: str, path: str, *, query: dict[str, str] | None = None,
                      body: Any = None, content_type: str = "application/json", timeout: float = 60) -> Any:
        data = body if isinstance(body, bytes | None) else orjson.dumps(body)
        headers = {"Content-Type": content_type} if data is not None else {}
        async with self._get_session().request(
                method, self.connection.base_url + path, params=query, data=data, headers=headers,
                timeout=aiohttp.ClientTimeout(total=timeout)) as response:
            raw = await response.read()
            if response.status >= 400:
                raise status_error(response.status, raw)
            return orjson.loads(raw) if raw else None

    # ----- typed helpers over the registry -------------------------------------------------------

    async def get(self, rt: ResourceType, name: str, namespace: str | None = None, *,
                  subresource: str | None = None) -> Obj:
        return await self.request("GET", _path(rt, namespace, name, subresource))  # type: ignore[no-any-return]

    async def list(self, rt: ResourceType, namespace: str | None = None, *, label_selector: str = "",
                   field_selector: str = "", resource_version: str = "", limit: int = 0) -> Obj:
        query = _selectors(label_selector, field_selector)
        if resource_version:
            query["resourceVersion"] = resource_version
        if limit:
            query["limit"] = str(limit)
        return await self.request("GET", _path(rt, namespace), query=query)  # type: ignore[no-any-return]

    async def create(self, rt: ResourceType, obj: Obj, namespace: str | None = None, *,
                     name: str | None = None, subresource: str | None = None) -> Obj:
        namespace = namespace or obj.get("metadata", {}).get("namespace")
        path = _path(rt, namespace, name, subresource)
        return await self.request("POST", path, body=obj)  # type: ignore[no-any-return]

    async def update(self, rt: ResourceType, obj: Obj, *, subresource: str | None = None) -> Obj:
        meta = obj["metadata"]
        path = _path(rt, meta.get("namespace"), meta["name"], subresource)
        return await self.request("PUT", path, body=obj)  # type: ignore[no-any-return]

    async def patch(self, rt: ResourceType, name: str, patch: Any, namespace: str | None = None, *,
                    patch_type: str = "merge", subresource: str | None = None,
                    field_manager: str | None = None) -> Obj:
        query = {"fieldManager": field_manager} if field_manager else None
        return await self.request("PATCH", _path(rt, namespace, name, subresource), query=query,  # type: ignore[no-any-return]
                                  body=patch, content_type=PATCH_TYPES[patch_type])

    async def delete(self, rt: ResourceType, name: str, namespace: str | None = None, *,
                     propagation: str | None = None, grace_period: int | None = None,
                     preconditions: Obj | None = None) -> Obj:
        options: Obj = {"kind": "DeleteOptions", "apiVersion": "v1"}
        if propagation:
            options["propagationPolicy"] = propagation
        if grace_period is not None:
            options["gracePeriodSeconds"] = grace_period
        if preconditions:
            options["preconditions"] = preconditions
        return await self.request("DELETE", _path(rt, namespace, name), body=options)  # type: ignore[no-any-return]

    async def watch(self, rt: ResourceType, namespace: str | None = None, *, resource_version: str = "",
                    label_selector: str = "", field_selector: str = "", timeout_seconds: int = 300,
                    bookmarks: bool = True) -> AsyncIterator[Obj]:
        """Watch events as dicts ({"type", "object"}); ends when the server closes the stream."""
        query = _selectors(label_selector, field_selector)
        query.update({"watch": "true", "timeoutSeconds": str(timeout_seconds)})
        if resource_version:
            query["resourceVersion"] = resource_version
        if bookmarks:
            query["allowWatchBookmarks"] = "true"
        async with self._get_session().get(
                self.connection.base_url + _path(rt, namespace), params=query,
                timeout=aiohttp.ClientTimeout(total=None, sock_read=timeout_seconds + 30)) as response:
            if response.status >= 400:
                raise status_error(response.status, await response.read())
            async for line in response.content:
                if line.strip():
                    yield json.loads(line)


def _selectors(label_selector: str, field_selector: str) -> dict[str, str]:
    query = {}
    if label_selector:
        query["labelSelector"] = label_selector
    if field_selector:
        query["fieldSelector"] = field_selector
    return query


def _path(rt: ResourceType, namespace: str | None, name: str | None = None, subresource: str | None = None) -> str:
    path = rt.path(namespace if rt.namespaced else None, name)
    return f"{path}/{subresource}" if subresource else path
