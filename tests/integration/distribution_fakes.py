"""The `registry` fixture (Debian's docker-registry), and a tiny in-memory OCI registry (aiohttp)
for what real registries are not easily made to do here: basic auth, the bearer-token challenge
flow with its own token service, and faults (corrupted blob bytes, a transfer cut off halfway).

    registry = FakeRegistry(auth="bearer", users={"me": "pw"})
    async with registry.serve() as host:      # "127.0.0.1:<port>"
        ...

Tokens carry the scopes granted: anonymous users get nothing, known users every action they ask
for. Blob and manifest GETs count requests so tests can prove what was (not) fetched.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import secrets
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from aiohttp import web

from tests.integration.registry_helpers import DockerRegistry, require


@pytest.fixture(name="registry")
def docker_registry(tmp_path: Path) -> Iterator[DockerRegistry]:
    """Debian's docker-registry on a free loopback port, for the test's duration."""
    require("docker-registry")
    server = DockerRegistry(tmp_path / "docker-registry").start()
    yield server
    server.stop()


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _error(status: int, code: str, message: str, **headers: str) -> web.Response:
    return web.json_response({"errors": [{"code": code, "message": message}]}, status=status, headers=headers)


class FakeRegistry:
    def __init__(self, *, auth: str = "", users: dict[str, str] | None = None) -> None:
        self.auth = auth  # "", "basic" or "bearer"
        self.users = users or {}
        self.blobs: dict[str, bytes] = {}
        self.manifests: dict[tuple[str, str], tuple[str, bytes]] = {}  # (repo, tag or digest) -> (type, body)
        self.corrupt: set[str] = set()  # blob digests served with a flipped byte
        self.cut: set[str] = set()  # blob digests whose transfer stops halfway
        self.requests: Counter[str] = Counter()  # "GET blob", "GET manifest", "token", ...
        self.tokens: dict[str, tuple[str, set[str]]] = {}  # token -> (user, scopes)
        self.host = ""

    # -- content ---------------------------------------------------------------------------------------

    def put_manifest(self, repo: str, tag: str, media_type: str, body: bytes) -> str:
        digest = _digest(body)
        self.manifests[(repo, tag)] = self.manifests[(repo, digest)] = (media_type, body)
        return digest

    def put_blobs(self, blobs: dict[str, bytes]) -> None:
        self.blobs.update(blobs)

    # -- serving ----------------------------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def serve(self) -> AsyncIterator[str]:
        app = web.Application(client_max_size=1 << 30)
        app.router.add_get("/token", self._token)
        app.router.add_get("/v2/", self._base)
        app.router.add_route("*", "/v2/{repo:.+}/manifests/{ref}", self._manifest)
        app.router.add_route("*", "/v2/{repo:.+}/blobs/uploads/{id:.*}", self._upload)
        app.router.add_route("*", "/v2/{repo:.+}/blobs/{digest}", self._blob)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        self.host = f"127.0.0.1:{port}"
        try:
            yield self.host
        finally:
            await runner.cleanup()

    def _user(self, request: web.Request) -> str | None:
        header = request.headers.get("Authorization", "")
        if not header.startswith("Basic "):
            return None
        user, _, password = base64.b64decode(header[6:]).decode().partition(":")
        return user if self.users.get(user) == password else None

    def _allowed(self, request: web.Request, repo: str, action: str) -> web.Response | None:
        """None when the request may go on, else the 401 with the challenge."""
        if not self.auth:
            return None
        if self.auth == "basic":
            if self._user(request) is not None:
                return None
            return _error(401, "UNAUTHORIZED", "authentication required",
                          **{"WWW-Authenticate": 'Basic realm="fake"'})
        header = request.headers.get("Authorization", "")
        granted = self.tokens.get(header.removeprefix("Bearer "), ("", set()))[1]
        if f"repository:{repo}:{action}" in granted:
            return None
        challenge = (f'Bearer realm="http://{self.host}/token",service="fake-registry",'
                     f'scope="repository:{repo}:{action}"')
        return _error(401, "UNAUTHORIZED", "authentication required", **{"WWW-Authenticate": challenge})

    async def _token(self, request: web.Request) -> web.Response:
        self.requests["token"] += 1
        header = request.headers.get("Authorization", "")
        user = self._user(request)
        if header and user is None:
            return web.json_response({"details": "incorrect username or password"}, status=401)
        granted: set[str] = set()
        for scope in request.query.getall("scope", []):
            kind, _, rest = scope.partition(":")
            repo, _, actions = rest.rpartition(":")
            if user is not None and kind == "repository":
                granted |= {f"repository:{repo}:{a}" for a in actions.split(",")}
        token = secrets.token_hex(8)
        self.tokens[token] = (user or "", granted)
        return web.json_response({"token": token, "expires_in": 300})

    async def _base(self, request: web.Request) -> web.Response:
        if self.auth == "basic" and self._user(request) is None:
            return _error(401, "UNAUTHORIZED", "authentication required", **{"WWW-Authenticate": 'Basic realm="fake"'})
        if self.auth == "bearer" and not request.headers.get("Authorization", "").startswith("Bearer "):
            challenge = f'Bearer realm="http://{self.host}/token",service="fake-registry"'
            return _error(401, "UNAUTHORIZED", "authentication required", **{"WWW-Authenticate": challenge})
        return web.json_response({})

    async def _manifest(self, request: web.Request) -> web.StreamResponse:
        repo, ref = request.match_info["repo"], request.match_info["ref"]
        denied = self._allowed(request, repo, "push" if request.method == "PUT" else "pull")
        if denied is not None:
            return denied
        if request.method == "PUT":
            digest = self.put_manifest(repo, ref, request.content_type, await request.read())
            return web.Response(status=201, headers={"Docker-Content-Digest": digest})
        self.requests[f"{request.method} manifest"] += 1
        found = self.manifests.get((repo, ref))
        if found is None:
            return _error(404, "MANIFEST_UNKNOWN", "manifest unknown")
        media_type, body = found
        headers = {"Docker-Content-Digest": _digest(body), "Content-Type": media_type}
        if request.method == "HEAD":
            return web.Response(headers={**headers, "Content-Length": str(len(body))})
        return web.Response(body=body, headers=headers)

    async def _blob(self, request: web.Request) -> web.StreamResponse:
        repo, digest = request.match_info["repo"], request.match_info["digest"]
        denied = self._allowed(request, repo, "pull")
        if denied is not None:
            return denied
        self.requests[f"{request.method} blob"] += 1
        data = self.blobs.get(digest)
        if data is None:
            return _error(404, "BLOB_UNKNOWN", "blob unknown to registry")
        if request.method == "HEAD":
            return web.Response(headers={"Content-Length": str(len(data)), "Docker-Content-Digest": digest})
        if digest in self.corrupt:
            data = bytes([data[0] ^ 0xFF]) + data[1:]
        response = web.StreamResponse(headers={"Content-Type": "application/octet-stream"})
        response.content_length = len(data)
        await response.prepare(request)
        if digest in self.cut:
            await response.write(data[: len(data) // 2])
            assert request.transport is not None
            request.transport.close()  # the connection dies mid-body
            return response
        await response.write(data)
        await response.write_eof()
        return response

    async def _upload(self, request: web.Request) -> web.Response:
        repo = request.match_info["repo"]
        denied = self._allowed(request, repo, "push")
        if denied is not None:
            return denied
        if request.method == "POST":
            mount = request.query.get("mount")
            if mount and mount in self.blobs:
                return web.Response(status=201, headers={"Location": f"/v2/{repo}/blobs/{mount}"})
            return web.Response(status=202, headers={"Location": f"/v2/{repo}/blobs/uploads/{secrets.token_hex(4)}"})
        data = await request.read()
        digest = request.query.get("digest", "")
        if _digest(data) != digest:
            return _error(400, "DIGEST_INVALID", "provided digest did not match uploaded content")
        self.blobs[digest] = data
        return web.Response(status=201, headers={"Docker-Content-Digest": digest})
