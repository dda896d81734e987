"""`RegistryClient`: one aiohttp session speaking the OCI distribution API to any number of registries.

It owns what every request needs: which endpoint a registry name goes to (`RegistryHosts`), TLS
per endpoint, and authentication. A request goes out with the Authorization last accepted for
its endpoint and scopes; a 401 answer's challenge is answered with each matching credential in
turn (or anonymously when none match), as the kubelet's keyring loop does, and the request is
sent again. Bodies are given as factories so a retried request can send its body again.

Manifests are fetched with an Accept header for OCI and Docker schema 2 manifests and indexes,
and verified: by digest against the digest asked for, by tag against `Docker-Content-Digest`.
Pulls try a registry's mirrors, then the registry itself, and report the most telling failure
(not found, then denied, then other registry errors, then unreachable). `pull.py` and `push.py`
build the image operations on these requests.
"""

from __future__ import annotations

import contextlib
import json
import os
import ssl
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from kubelite.images.blobs import DigestMismatch
from kubelite.images.distribution.auth import Authorizer, Challenge, parse_challenges, pick_challenge
from kubelite.images.distribution.credentials import Credential, Keyring
from kubelite.images.distribution.errors import (
    AuthError,
    DistributionError,
    NotFound,
    RegistryError,
    RegistryUnreachable,
    error_from_response,
)
from kubelite.images.distribution.registries import Endpoint, RegistryHosts
from kubelite.images.oci import DOCKER_LIST, DOCKER_MANIFEST, OCI_INDEX, OCI_MANIFEST, Descriptor, digest_of

if TYPE_CHECKING:
    import aiohttp

MANIFEST_ACCEPT = ", ".join((OCI_INDEX, OCI_MANIFEST, DOCKER_LIST, DOCKER_MANIFEST))
MAX_MANIFEST_BYTES = 4 << 20  # the spec's suggested limit; a bigger answer is not a manifest
CONNECT_TIMEOUT = 30.0
READ_TIMEOUT = 120.0  # between two reads of a response, not for the whole transfer
Body = bytes | Callable[[], Any] | None


@dataclass(frozen=True)
class Fetched:
    """A manifest or index as the registry served it (already verified)."""
    endpoint: Endpoint
    repository: str  # on that endpoint (after rewrites)
    descriptor: Descriptor
    data: bytes


class RegistryClient:
    def __init__(self, *, hosts: RegistryHosts | None = None, keyring: Keyring | None = None,
                 user_agent: str = "kubelite") -> None:
        self.hosts = hosts or RegistryHosts()
        self.keyring = keyring or Keyring()
        self.user_agent = user_agent
        self._session: aiohttp.ClientSession | None = None
        self._authorizer: Authorizer | None = None
        self._auth: dict[tuple[str, tuple[str, ...]], str] = {}  # (endpoint, scopes) -> accepted Authorization
        self._contexts: dict[tuple[str, bool], ssl.SSLContext] = {}

    async def __aenter__(self) -> RegistryClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            import aiohttp

            timeout = aiohttp.ClientTimeout(total=None, connect=CONNECT_TIMEOUT, sock_read=READ_TIMEOUT)
            self._session = aiohttp.ClientSession(timeout=timeout, headers={"User-Agent": self.user_agent},
                                                  auto_decompress=False)  # blobs are hashed as served
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
            self._authorizer = None

    # -- requests ------------------------------------------------------------------------------------

    def credentials(self, endpoint: Endpoint, repository: str) -> list[Credential]:
        """What to answer a challenge from `endpoint` with, in order (registries.yaml first)."""
        found: list[Credential] = []
        if endpoint.auth is not None:
            found.append(Credential(endpoint.auth.username, endpoint.auth.password, endpoint.auth.identity_token,
                                    source=f"registries config for {endpoint.host}"))
        hosts = [endpoint.host] + ([endpoint.registry] if endpoint.registry != endpoint.host else [])
        for host in hosts:
            found.extend(c for c in self.keyring.lookup(host, repository) if c not in found)
        return found

    @contextlib.asynccontextmanager
    async def request(self, endpoint: Endpoint, method: str, url: str, *, scopes: list[str], repository: str,
                      headers: dict[str, str] | None = None, body: Body = None,
                      candidates: list[Credential | None] | None = None) -> AsyncIterator[aiohttp.ClientResponse]:
        """Send with authentication; yields the final response (any status but an unanswerable 401)."""
        resp = await self._send(endpoint, method, url, scopes=scopes, repository=repository, headers=headers,
                                body=body, candidates=candidates)
        try:
            yield resp
        finally:
            resp.release()

    async def _send(self, endpoint: Endpoint, method: str, url: str, *, scopes: list[str], repository: str,
                    headers: dict[str, str] | None, body: Body,
                    candidates: list[Credential | None] | None) -> aiohttp.ClientResponse:
        key = (endpoint.base_url, tuple(scopes))
        # explicit candidates (login) must prove themselves: no Authorization accepted earlier
        resp = await self._raw(endpoint, method, url, headers, body, self._auth.get(key) if candidates is None else None)
        if resp.status != 401:
            return resp
        challenge = pick_challenge(parse_challenges(resp.headers.getall("WWW-Authenticate", [])))
        denied = error_from_response(resp.status, resp.reason or "", await resp.read(), url=url, what=method)
        resp.release()
        if challenge is None:
            raise AuthError(f"{endpoint.base_url} answered 401 without a Basic or Bearer challenge: {denied}")
        explicit = candidates
        if candidates is None:
            found = self.credentials(endpoint, repository)
            candidates = list(found) if found else [None]
        failures: list[str] = []
        for credential in candidates:
            try:
                authorization = await self._header(challenge, scopes, credential)
            except AuthError as e:
                failures.append(str(e))
                continue
            resp = await self._raw(endpoint, method, url, headers, body, authorization)
            if resp.status != 401:
                if explicit is None:
                    self._auth[key] = authorization
                return resp
            failures.append(str(error_from_response(resp.status, resp.reason or "", await resp.read(), url=url,
                                                    what=method)))
            resp.release()
        action = "push" if any(s.endswith(",push") for s in scopes) else "pull"
        failures = failures or [str(denied)]
        raise AuthError(_denied_message(action, candidates, failures), last=failures[-1])

    async def _header(self, challenge: Challenge, scopes: list[str], credential: Credential | None) -> str:
        if self._authorizer is None:
            self._authorizer = Authorizer(self.session)
        return await self._authorizer.header(challenge, scopes, credential)

    async def _raw(self, endpoint: Endpoint, method: str, url: str, headers: dict[str, str] | None, body: Body,
                   authorization: str | None) -> aiohttp.ClientResponse:
        import aiohttp

        sent = dict(headers or {})
        if authorization:
            sent["Authorization"] = authorization
        data = body() if callable(body) else body
        try:
            return await self.session.request(method, url, headers=sent, data=data, ssl=self._ssl(endpoint))
        except (TimeoutError, aiohttp.ClientConnectorError, aiohttp.ServerDisconnectedError) as e:
            raise RegistryUnreachable(f"cannot reach {endpoint.base_url} ({method} {url}): {_reason(e)}"
                                      + _hint(endpoint, e)) from None
        except aiohttp.ClientError as e:
            raise DistributionError(f"{method} {url}: {_reason(e)}") from None

    def _ssl(self, endpoint: Endpoint) -> Any:
        if endpoint.plain_http:
            return None
        if endpoint.tls.insecure_skip_verify:
            return False
        if not endpoint.tls.ca_file:
            return True
        key = (endpoint.tls.ca_file, False)
        if key not in self._contexts:
            try:
                self._contexts[key] = ssl.create_default_context(cafile=endpoint.tls.ca_file)
            except (OSError, ssl.SSLError) as e:
                raise DistributionError(f"cannot load the CA file {endpoint.tls.ca_file} for {endpoint.host}: {e}") from None
        return self._contexts[key]

    # -- manifests -----------------------------------------------------------------------------------

    def _pull_endpoints(self, registry: str) -> list[Endpoint]:
        endpoints = self.hosts.pull_endpoints(registry)
        if not endpoints:  # --pull-only-from leaves this registry nowhere to go: say so, send nothing
            raise RegistryUnreachable(f"{registry}: this node pulls only from {', '.join(self.hosts.only)}")
        return endpoints

    async def fetch_manifest(self, registry: str, path: str, reference: str) -> Fetched:
        """The manifest or index `reference` (a tag or a digest) names, from the first endpoint that
        has it."""
        errors: list[Exception] = []
        for endpoint in self._pull_endpoints(registry):
            try:
                return await self.fetch_manifest_at(endpoint, endpoint.repository(path), reference)
            except (DistributionError, DigestMismatch) as e:
                errors.append(e)
        raise most_telling(errors)

    async def fetch_manifest_at(self, endpoint: Endpoint, repository: str, reference: str) -> Fetched:
        url = f"{endpoint.base_url}/v2/{repository}/manifests/{reference}"
        async with self.request(endpoint, "GET", url, scopes=[pull_scope(repository)], repository=repository,
                                headers={"Accept": MANIFEST_ACCEPT}) as resp:
            if resp.status != 200:
                raise error_from_response(resp.status, resp.reason or "", await resp.read(), url=url,
                                          what=f"manifest {repository}:{reference}")
            data = await _read_limited(resp, MAX_MANIFEST_BYTES, url)
            media_type = resp.headers.get("Content-Type", "").split(";")[0].strip()
            announced = resp.headers.get("Docker-Content-Digest", "")
        digest = digest_of(data)
        want = reference if ":" in reference else announced
        if want.startswith("sha256:") and want != digest:
            raise DigestMismatch(f"manifest {repository}@{want} from {endpoint.base_url} has digest {digest}")
        return Fetched(endpoint, repository, Descriptor(_media_type(media_type, data), digest, len(data)), data)

    async def head_manifest(self, registry: str, path: str, reference: str) -> tuple[Endpoint, str, Descriptor | None]:
        """Where `reference` (a tag or digest) resolves, and its descriptor when the endpoint's
        HEAD answer gives the digest (None: fetch the manifest by tag to learn it)."""
        errors: list[Exception] = []
        for endpoint in self._pull_endpoints(registry):
            repository = endpoint.repository(path)
            url = f"{endpoint.base_url}/v2/{repository}/manifests/{reference}"
            try:
                async with self.request(endpoint, "HEAD", url, scopes=[pull_scope(repository)], repository=repository,
                                        headers={"Accept": MANIFEST_ACCEPT}) as resp:
                    if resp.status != 200:
                        raise error_from_response(resp.status, resp.reason or "", b"", url=url,
                                                  what=f"manifest {repository}:{reference}")
                    digest = resp.headers.get("Docker-Content-Digest", "")
                    if not digest.startswith("sha256:"):
                        return endpoint, repository, None
                    media_type = resp.headers.get("Content-Type", "").split(";")[0].strip()
                    return endpoint, repository, Descriptor(media_type, digest, int(resp.headers.get("Content-Length") or 0))
            except DistributionError as e:
                errors.append(e)
        raise most_telling(errors)

    async def login(self, registry: str, credential: Credential) -> None:
        """Check `credential` against the registry's /v2/ (AuthError when refused)."""
        endpoint = self.hosts.push_endpoint(registry)
        url = f"{endpoint.base_url}/v2/"
        try:
            async with self.request(endpoint, "GET", url, scopes=[], repository="", candidates=[credential]) as resp:
                if resp.status >= 400:
                    raise error_from_response(resp.status, resp.reason or "", await resp.read(), url=url, what="login")
        except AuthError as e:
            raise AuthError(f"login to {registry} refused: unauthorized: incorrect username or password ({e.last})",
                            last=e.last) from None


def pull_scope(repository: str) -> str:
    return f"repository:{repository}:pull"


def most_telling(errors: list[Exception]) -> Exception:
    """Of the failures of several endpoints, the one that explains most (see the module doc)."""
    for kind in (NotFound, AuthError, RegistryError, DigestMismatch):
        for error in errors:
            if isinstance(error, kind):
                return error
    return errors[-1] if errors else DistributionError("no endpoint to try")


def _media_type(declared: str, data: bytes) -> str:
    if declared in (OCI_INDEX, OCI_MANIFEST, DOCKER_LIST, DOCKER_MANIFEST):
        return declared
    try:
        doc = json.loads(data)
    except ValueError:
        return declared
    media_type = doc.get("mediaType") if isinstance(doc, dict) else None
    if isinstance(media_type, str) and media_type:
        return media_type
    return OCI_INDEX if isinstance(doc, dict) and "manifests" in doc else OCI_MANIFEST


async def _read_limited(resp: aiohttp.ClientResponse, limit: int, url: str) -> bytes:
    size = resp.content_length
    if size is not None and size > limit:
        raise DistributionError(f"{url}: a manifest of {size} bytes is over the {limit}-byte limit")
    data = bytearray()
    async for chunk in resp.content.iter_chunked(1 << 16):
        data += chunk
        if len(data) > limit:
            raise DistributionError(f"{url}: the manifest is over the {limit}-byte limit")
    return bytes(data)


def _denied_message(action: str, candidates: list[Credential | None], failures: list[str]) -> str:
    tried = ", ".join(c.source or c.username for c in candidates if c is not None) or "anonymous access"
    return (f"{action} access denied, repository does not exist or may require authorization "
            f"(tried {tried}): {failures[-1]}")


def _reason(error: BaseException) -> str:
    """The cause in a few words (aiohttp's texts name internals such as `ssl:default`)."""
    import socket

    os_error = getattr(error, "os_error", None)
    if isinstance(os_error, socket.gaierror):
        return f"no such host ({os_error.strerror})"
    if isinstance(os_error, ssl.SSLError):
        return f"TLS handshake failed ({os_error.reason or os_error})"
    if isinstance(os_error, OSError) and os_error.errno and os_error.errno > 0:
        return os.strerror(os_error.errno)
    if isinstance(error, TimeoutError):
        return "timed out"
    return str(error) or type(error).__name__


def _hint(endpoint: Endpoint, error: BaseException) -> str:
    if not endpoint.plain_http and isinstance(getattr(error, "os_error", None), ssl.SSLError):
        return (f"; if {endpoint.host} serves plain HTTP, add --insecure-registry {endpoint.host} "
                "(or list it under insecure: in registries.yaml)")
    return ""
