"""The API server: an aiohttp application over the generic storage.

Request flow: auth middleware (who, may they) -> error middleware (any StatusError becomes a
metav1 Status; anything unexpected becomes a 500 Status and a log line, never a traceback to the
client) -> router: non-resource paths (version, health, discovery, OpenAPI) or the generic
resource handler.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler

from kubelite.api import discovery
from kubelite.api.codec import dumps
from kubelite.api.handlers import Api, ResourceHandler, json_response
from kubelite.api.requestinfo import parse_resource_path
from kubelite.api.storage import ResourceStorage
from kubelite.api.strategies import strategy_for
from kubelite.cluster.config import ServerConfig
from kubelite.objects.errors import InternalError, NotFound, StatusError
from kubelite.objects.registry import REGISTRY, Registry
from kubelite.store.interface import Store

log = logging.getLogger(__name__)

HEALTH_PATHS = ("/healthz", "/livez", "/readyz")


def build_api(store: Store, config: ServerConfig, registry: Registry = REGISTRY) -> Api:
    storages = {}
    for rt in registry.resources:
        extra: dict[str, Any] = {}
        if rt.kind == "Service" and not rt.group:
            extra = {"service_cidr": config.service_cidr, "node_port_range": config.node_port_range}
        storages[rt] = ResourceStorage(store, rt, strategy_for(rt, **extra))
    return Api(registry, storages, data_dir=config.data_dir)


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except StatusError as exc:
        response = json_response(exc.to_status(), status=exc.code)
        response.headers.update(exc.headers)
        return response
    except web.HTTPException:
        raise
    except (ConnectionError, asyncio.CancelledError):
        raise
    except Exception:
        log.exception("internal error serving %s %s", request.method, request.path_qs)
        err = InternalError("an internal error occurred; the server log has the details")
        return json_response(err.to_status(), status=500)


class Router:
    def __init__(self, api: Api, config: ServerConfig) -> None:
        self.api = api
        self.config = config
        self.resources = ResourceHandler(api)

    async def __call__(self, request: web.Request) -> web.StreamResponse:
        path = request.path.rstrip("/") or "/"
        special = await self._non_resource(request, path)
        if special is not None:
            return special
        rr = parse_resource_path(self.api.registry, path)
        if rr is None:
            raise NotFound(f"the server could not find the requested resource ({request.path})")
        return await self.resources.handle(request, rr)

    async def _non_resource(self, request: web.Request, path: str) -> web.StreamResponse | None:
        if path == "/version":
            return json_response(discovery.KUBERNETES_VERSION)
        if path in HEALTH_PATHS or path.startswith(tuple(p + "/" for p in HEALTH_PATHS)):
            return web.Response(text="ok", content_type="text/plain")
        if path.startswith("/openapi"):
            from kubelite.api.openapi import serve_openapi

            return await serve_openapi(request, self.api.registry, path)
        if request.method != "GET":
            return None
        return self._discovery(request, path)

    def _discovery(self, request: web.Request, path: str) -> web.StreamResponse | None:
        registry = self.api.registry
        parts = [p for p in path.split("/") if p]
        aggregated = discovery.aggregated_content_type(request.headers.get("Accept"))
        if parts in (["api"], ["apis"]):
            if aggregated:
                return _aggregated(discovery.aggregated(registry, core=parts == ["api"]), aggregated)
            if parts == ["api"]:
                return json_response(discovery.api_versions(f"{self.config.advertise_address}:{self.config.port}"))
            return json_response(discovery.api_group_list(registry))
        if parts == ["api", "v1"]:
            return json_response(discovery.api_resource_list(registry, "", "v1"))
        if len(parts) == 2 and parts[0] == "apis" and parts[1] in registry.groups():
            return json_response(discovery.api_group(registry, parts[1]))
        if len(parts) == 3 and parts[0] == "apis" and parts[2] in registry.versions(parts[1]):
            return json_response(discovery.api_resource_list(registry, parts[1], parts[2]))
        return None


def _aggregated(doc: dict[str, Any], content_type: str) -> web.Response:
    return web.Response(body=dumps(doc), headers={"Content-Type": content_type, "Vary": "Accept"})


def build_app(api: Api, config: ServerConfig, *, middlewares: list[Any] | None = None) -> web.Application:
    app = web.Application(middlewares=[*(middlewares or []), error_middleware],
                          client_max_size=4 * 1024 * 1024, handler_args={"max_field_size": 65536})
    app.router.add_route("*", "/{tail:.*}", Router(api, config))
    return app


async def ensure_system_objects_task(api: Api, config: ServerConfig) -> None:
    """Objects every cluster has from the start: system namespaces, the `kubernetes` Service."""
    from kubelite.api.bootstrap import ensure_system_objects

    await ensure_system_objects(api, config)


async def compact_forever(store: Store, config: ServerConfig) -> None:
    """Keep the newest `compact_retain` revisions of history (kine compacts the same way)."""
    while True:
        await asyncio.sleep(config.compact_interval)
        try:
            current = await store.current_revision()
            if current > config.compact_retain:
                await store.compact(current - config.compact_retain)
        except Exception:
            log.exception("compaction failed; will retry in %ss", config.compact_interval)
