"""The cluster's image registry: an OCI Distribution API server (aiohttp) over `RegistryStorage`.

    RegistryServer(root, listen=[("127.0.0.1", 5000)]) -> await start() -> .port, .urls -> await stop()

Every request goes: `rules.route` (path -> endpoint and checked repository name) -> method check
-> the endpoint's handler (`blob_handlers`, `manifest_handlers`). Errors leave as the spec's JSON
body (`RegistryError`); anything unexpected is logged and answered 500 UNKNOWN, never a traceback.
Every response carries `Docker-Distribution-API-Version: registry/2.0`, which clients (Docker,
containerd, skopeo) look for. Anonymous access, plain HTTP: the registry serves loopback and the
node network, and clients are configured to treat it as insecure, as with minikube's add-on.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from aiohttp import web

from kubelite.images.registry import blob_handlers, manifest_handlers
from kubelite.images.registry.rules import RegistryError, Route, route
from kubelite.images.registry.storage import RegistryStorage
from kubelite.images.registry.uploads import Uploads

log = logging.getLogger(__name__)

API_VERSION = ("Docker-Distribution-API-Version", "registry/2.0")
PURGE_EVERY = 3600.0  # seconds between sweeps for abandoned uploads (Uploads.purge_stale)

Handler = Callable[["Registry", web.Request, Route], Awaitable[web.StreamResponse]]
ENDPOINTS: dict[str, tuple[frozenset[str], Handler]] = {
    "base": (frozenset({"GET", "HEAD"}), manifest_handlers.base),
    "catalog": (frozenset({"GET", "HEAD"}), manifest_handlers.catalog),
    "tags": (frozenset({"GET", "HEAD"}), manifest_handlers.tags),
    "manifest": (frozenset({"GET", "HEAD", "PUT", "DELETE"}), manifest_handlers.manifest),
    "referrers": (frozenset({"GET", "HEAD"}), manifest_handlers.referrers),
    "blob": (frozenset({"GET", "HEAD", "DELETE"}), blob_handlers.blob),
    "uploads": (frozenset({"POST"}), blob_handlers.start_upload),
    "upload": (frozenset({"GET", "PATCH", "PUT", "DELETE"}), blob_handlers.upload),
}


@dataclass
class Registry:
    """What the handlers share: the files, the upload sessions, and the lock for manifest changes."""

    storage: RegistryStorage
    uploads: Uploads
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


async def dispatch(registry: Registry, request: web.Request) -> web.StreamResponse:
    try:
        found = route(request.path)
        if found is None:
            raise RegistryError("UNSUPPORTED", {"path": request.path}, status=404,
                                message="no such endpoint of the distribution API")
        methods, handler = ENDPOINTS[found.kind]
        if request.method not in methods:
            raise RegistryError("UNSUPPORTED", {"method": request.method},
                                headers={"Allow": ", ".join(sorted(methods))})
        response = await handler(registry, request, found)
    except RegistryError as e:
        response = _error_response(e)
    except ConnectionError as e:  # the client hung up mid-body; uploads already cleaned up after themselves
        log.debug("registry: %s %s: client went away (%s)", request.method, request.path, e)
        response = _error_response(RegistryError("BLOB_UPLOAD_INVALID", message="the request body broke off"))
    except Exception:
        log.exception("registry: %s %s failed", request.method, request.path)
        response = _error_response(RegistryError("UNKNOWN", message="internal error; see the server log"))
    response.headers[API_VERSION[0]] = API_VERSION[1]
    return response


def _error_response(error: RegistryError) -> web.Response:
    response = web.Response(status=error.status, body=json.dumps(error.body()).encode(),
                            content_type="application/json", headers=error.headers)
    if error.status >= 500:
        log.warning("registry: %s", error)
    return response


class RegistryServer:
    def __init__(self, root: Path, listen: Sequence[tuple[str, int]]) -> None:
        self.root = root
        self.listen = list(listen)
        storage = RegistryStorage(root)
        self.registry = Registry(storage, Uploads(storage))
        self.runner: web.AppRunner | None = None
        self.purger: asyncio.Task[None] | None = None
        self.port = 0
        self.urls: list[str] = []

    async def start(self) -> None:
        """Serve on every listen address; an address that cannot be bound raises OSError (nothing
        stays open then)."""
        await asyncio.to_thread(self._prepare)
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        # A short shutdown wait: an upload still streaming at stop is resumable or cleaned up anyway.
        self.runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=5.0)
        await self.runner.setup()
        try:
            for host, port in self.listen:
                await web.TCPSite(self.runner, host, port, reuse_address=True).start()
                bound = int(self.runner.addresses[-1][1])  # the pick of port 0
                self.port = self.port or bound
                self.urls.append(f"http://{_host_text(host)}:{bound}")
        except BaseException:
            await self.stop()
            self.port, self.urls = 0, []
            raise
        self.purger = asyncio.create_task(self._purge_forever(), name="registry-upload-purge")
        log.info("registry serving %s from %s", ", ".join(self.urls), self.root)

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        return await dispatch(self.registry, request)

    def _prepare(self) -> None:
        self.registry.storage.ensure()
        self.registry.uploads.purge_stale()

    async def _purge_forever(self) -> None:
        while True:
            await asyncio.sleep(PURGE_EVERY)
            try:
                await asyncio.to_thread(self.registry.uploads.purge_stale)
            except OSError as e:
                log.warning("registry: sweeping abandoned uploads failed: %s", e)

    async def stop(self) -> None:
        if self.purger is not None:
            self.purger.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.purger
            self.purger = None
        if self.runner is not None:
            await self.runner.cleanup()
            self.runner = None


def _host_text(host: str) -> str:
    return f"[{host}]" if ":" in host else host
