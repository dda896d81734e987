"""Registry authentication: `WWW-Authenticate` challenges and the token flow Docker Hub uses.

A registry that wants credentials answers 401 with challenges such as

    WWW-Authenticate: Bearer realm="https://auth.example/token",service="registry.example",
                      scope="repository:library/nginx:pull"

`parse_challenges` reads them (RFC 7235 auth-params, quoted strings with escapes, several
challenges in one header). For `Basic` the client resends with `user:password`; for `Bearer` it
gets a token from the realm (`token_request`: GET with `service`, one `scope` per repository
action and the basic credentials if any; a POST of the refresh token for identity tokens) and
sends `Authorization: Bearer <token>` (`token` or `access_token` of the answer). Tokens are kept
until shortly before `expires_in` (60 s when absent). Pure functions here; `Authorizer` does the
token requests with the caller's aiohttp session.
"""

from __future__ import annotations

import base64
import json
import re
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from kubelite.images.distribution.credentials import Credential
from kubelite.images.distribution.errors import AuthError, RegistryUnreachable

if TYPE_CHECKING:
    import aiohttp

CLIENT_ID = "kubelite"
DEFAULT_TOKEN_SECONDS = 60
EXPIRY_MARGIN = 10  # seconds: renew a token this long before the registry would reject it
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")


@dataclass(frozen=True)
class Challenge:
    scheme: str  # lower case: "bearer", "basic"
    params: dict[str, str] = field(default_factory=dict)  # keys lower case

    @property
    def realm(self) -> str:
        return self.params.get("realm", "")


def parse_challenges(headers: list[str] | str) -> list[Challenge]:
    """Every challenge of one or more `WWW-Authenticate` header values (malformed parts skipped)."""
    out: list[Challenge] = []
    for header in [headers] if isinstance(headers, str) else headers:
        out.extend(_parse_one(header))
    return out


def _parse_one(text: str) -> list[Challenge]:
    out: list[Challenge] = []
    i, n = 0, len(text)
    while i < n:
        while i < n and text[i] in " \t,":
            i += 1
        match = _TOKEN.match(text, i)
        if match is None:
            i += 1  # skip a stray character rather than give up on the rest
            continue
        name, i = match.group(), match.end()
        j = i
        while j < n and text[j] in " \t":
            j += 1
        if j < n and text[j] == "=":
            value, i = _value(text, j + 1)
            if out:  # a parameter before any scheme belongs to nothing
                out[-1].params[name.lower()] = value
        else:
            out.append(Challenge(name.lower(), {}))
    return out


def _value(text: str, i: int) -> tuple[str, int]:
    n = len(text)
    while i < n and text[i] in " \t":
        i += 1
    if i < n and text[i] == '"':
        chars, i = [], i + 1
        while i < n and text[i] != '"':
            if text[i] == "\\" and i + 1 < n:
                i += 1
            chars.append(text[i])
            i += 1
        return "".join(chars), i + 1
    match = _TOKEN.match(text, i)
    return (match.group(), match.end()) if match else ("", i)


def pick_challenge(challenges: list[Challenge]) -> Challenge | None:
    """Bearer when offered (it carries scopes), else Basic; None for schemes we do not speak."""
    for scheme in ("bearer", "basic"):
        for challenge in challenges:
            if challenge.scheme == scheme:
                return challenge
    return None


def basic_header(credential: Credential) -> str:
    return "Basic " + base64.b64encode(f"{credential.username}:{credential.password}".encode()).decode()


@dataclass(frozen=True)
class TokenRequest:
    method: str  # GET, or POST for a refresh token
    url: str
    query: list[tuple[str, str]]
    form: dict[str, str] | None
    authorization: str  # "" for anonymous


def token_request(challenge: Challenge, scopes: list[str], credential: Credential | None) -> TokenRequest:
    """How to ask the challenge's realm for a token for `scopes` (pure)."""
    realm = challenge.realm
    if not realm.startswith(("https://", "http://")):
        raise AuthError(f"the registry's bearer challenge has no usable realm ({realm!r})")
    service = challenge.params.get("service", "")
    wanted = list(dict.fromkeys([*scopes, *challenge.params.get("scope", "").split()]))
    if credential is not None and credential.identity_token:
        form = {"grant_type": "refresh_token", "refresh_token": credential.identity_token,
                "service": service, "client_id": CLIENT_ID, "scope": " ".join(wanted)}
        return TokenRequest("POST", realm, [], form, "")
    query = ([("service", service)] if service else []) + [("scope", s) for s in wanted]
    authorization = ""
    if credential is not None and credential.username:
        query.append(("account", credential.username))
        authorization = basic_header(credential)
    return TokenRequest("GET", realm, query, None, authorization)


def token_from_response(doc: Any, *, now: float) -> tuple[str, float]:
    """(token, monotonic expiry) from the token service's JSON answer."""
    if not isinstance(doc, dict):
        raise AuthError("the token service answered something that is not a JSON object")
    token = doc.get("token") or doc.get("access_token")
    if not isinstance(token, str) or not token:
        raise AuthError("the token service's answer has no token")
    try:
        seconds = int(doc.get("expires_in") or DEFAULT_TOKEN_SECONDS)
    except (TypeError, ValueError):
        seconds = DEFAULT_TOKEN_SECONDS
    return token, now + max(seconds - EXPIRY_MARGIN, 1)


class Authorizer:
    """Turns a challenge + credential into an Authorization header, caching bearer tokens."""

    def __init__(self, session: aiohttp.ClientSession) -> None:
        self.session = session
        self._tokens: dict[tuple[str, str, tuple[str, ...], Credential | None], tuple[str, float]] = {}

    async def header(self, challenge: Challenge, scopes: list[str], credential: Credential | None) -> str:
        if credential is not None and credential.registry_token:
            return f"Bearer {credential.registry_token}"
        if challenge.scheme == "basic":
            if credential is None or not credential.username:
                raise AuthError("the registry wants a user name and password (basic auth); "
                                "log in with `kubelite image login` or give an imagePullSecret")
            return basic_header(credential)
        key = (challenge.realm, challenge.params.get("service", ""), tuple(scopes), credential)
        cached = self._tokens.get(key)
        if cached is not None and cached[1] > time.monotonic():
            return f"Bearer {cached[0]}"
        token, expiry = await self._fetch(token_request(challenge, scopes, credential))
        self._tokens[key] = (token, expiry)
        return f"Bearer {token}"

    async def _fetch(self, request: TokenRequest) -> tuple[str, float]:
        import aiohttp

        headers = {"Authorization": request.authorization} if request.authorization else {}
        try:
            async with self.session.request(request.method, request.url, params=request.query or None,
                                            data=request.form, headers=headers) as resp:
                body = await resp.read()
                if resp.status in (401, 403):
                    who = "anonymous token" if not request.authorization and request.form is None else "token"
                    raise AuthError(f"failed to fetch {who}: {resp.status} {resp.reason} from {request.url}"
                                    + (" (check the user name and password)" if request.authorization else ""))
                if resp.status >= 400:
                    raise AuthError(f"failed to fetch token: {resp.status} {resp.reason} from {request.url}")
                try:
                    doc = json.loads(body)
                except ValueError:
                    raise AuthError(f"the token service at {request.url} did not answer JSON") from None
        except aiohttp.ClientConnectionError as e:
            raise RegistryUnreachable(f"cannot reach the token service {request.url}: {e}") from None
        return token_from_response(doc, now=time.monotonic())
