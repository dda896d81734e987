"""Authentication (who is calling) and the authorization seam (may they), as aiohttp middleware.

Authenticators, in upstream's order:
  1. a TLS client certificate that verified against the cluster CA: CN is the user, each O a group;
  2. `Authorization: Bearer <token>` looked up in a kube-apiserver `--token-auth-file` CSV.
Every authenticated user also gets the group `system:authenticated`.

Requests with no credentials are anonymous and only reach the public paths (`/healthz`, `/livez`,
`/readyz` with their sub-checks, `/version`); everything else answers 401 with a metav1 Status.
A bearer token that is present but unknown answers 401 everywhere, even on the public paths, as
upstream does ("don't consider a bad bearer token anonymous"); other Authorization schemes are ignored.
"""

from __future__ import annotations

import csv
import hmac
import io
import logging
import os
import secrets
import socket
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from kubelite.objects.errors import Forbidden, StatusError, Unauthorized

log = logging.getLogger(__name__)

AUTHENTICATED_GROUP = "system:authenticated"
UNAUTHENTICATED_GROUP = "system:unauthenticated"
ANONYMOUS_USER = "system:anonymous"
ANONYMOUS_PATHS = frozenset({"/healthz", "/livez", "/readyz", "/version"})
_ANONYMOUS_PREFIXES = ("/healthz/", "/livez/", "/readyz/")
_METHOD_VERBS = {"GET": "get", "HEAD": "get", "POST": "create", "PUT": "update", "PATCH": "patch",
                 "DELETE": "delete"}


@dataclass(frozen=True)
class UserInfo:
    name: str
    uid: str = ""
    groups: tuple[str, ...] = ()

    def with_authenticated_group(self) -> UserInfo:
        if AUTHENTICATED_GROUP in self.groups:
            return self
        return UserInfo(self.name, self.uid, (*self.groups, AUTHENTICATED_GROUP))


ANONYMOUS = UserInfo(ANONYMOUS_USER, "", (UNAUTHENTICATED_GROUP,))
INTERNAL_USER = UserInfo("system:kubelite-server", "", ("system:masters",))


def new_token() -> str:
    """A random bearer token (256 bits, URL-safe, no commas) for `TokenFile.add`."""
    return secrets.token_urlsafe(32)


# --- token file -------------------------------------------------------------------------------

class TokenFile:
    """A `token,user,uid,"group1,group2"` CSV; re-read whenever the file changes on disk.

    Bad lines (fewer than 3 columns, empty token or user) are skipped with a warning rather than
    failing the server. Lines starting with `#` are comments. A later duplicate token wins.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._entries: list[tuple[bytes, UserInfo]] = []
        self._stamp: tuple[int, int] | None = None
        self._reload_if_changed()

    def lookup(self, token: str) -> UserInfo | None:
        """The user owning `token`; compares against every entry in constant time."""
        self._reload_if_changed()
        wanted = token.encode()
        found: UserInfo | None = None
        for candidate, user in self._entries:
            if hmac.compare_digest(candidate, wanted):
                found = user
        return found

    def add(self, token: str, user: str, groups: Iterable[str] = (), *, uid: str = "") -> None:
        """Append a line (creating the file, mode 0600). Re-adding the same mapping is a no-op."""
        info = UserInfo(user, uid, tuple(groups))
        _check_entry(token, info)
        existing = self.lookup(token)
        if existing == info:
            return
        if existing is not None:
            raise ValueError(f"token already assigned to user {existing.name!r}")
        self._append(_format_line(token, info))
        self._entries.append((token.encode(), info))
        self._stamp = _stamp(self.path)

    def _append(self, line: str) -> None:
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        with os.fdopen(fd, "a", encoding="utf-8", newline="") as f:
            if f.tell() > 0 and not self.path.read_bytes().endswith(b"\n"):
                f.write("\n")
            f.write(line)

    def _reload_if_changed(self) -> None:
        stamp = _stamp(self.path)
        if stamp == self._stamp:
            return
        self._stamp = stamp
        text = self.path.read_text(encoding="utf-8") if stamp is not None else ""
        self._entries = parse_token_csv(text, source=str(self.path))


def parse_token_csv(text: str, *, source: str = "<tokens>") -> list[tuple[bytes, UserInfo]]:
    """Parse token-file text into (token, user) pairs, skipping (and logging) bad lines."""
    entries: list[tuple[bytes, UserInfo]] = []
    lines = [ln for ln in text.splitlines() if not ln.lstrip().startswith("#")]
    for number, record in enumerate(csv.reader(lines, skipinitialspace=True), start=1):
        entry = _parse_record(record)
        if entry is None:
            if any(field.strip() for field in record):
                log.warning("%s: skipping malformed token record %d", source, number)
            continue
        entries.append(entry)
    return entries


def _parse_record(record: list[str]) -> tuple[bytes, UserInfo] | None:
    if len(record) < 3:
        return None
    token, user, uid = (field.strip() for field in record[:3])
    if not token or not user:
        return None
    groups = tuple(g.strip() for g in record[3].split(",") if g.strip()) if len(record) > 3 else ()
    return token.encode(), UserInfo(user, uid, groups)


def _check_entry(token: str, info: UserInfo) -> None:
    if not token or any(c in token for c in ',"\r\n \t') or not token.isprintable():
        raise ValueError("token must be non-empty printable text without commas, quotes or whitespace")
    for value in (info.name, info.uid, *info.groups):
        if any(c in value for c in "\r\n"):
            raise ValueError(f"newline not allowed in token file field {value!r}")
    if not info.name or any("," in g for g in info.groups):
        raise ValueError("user must be non-empty and group names must not contain commas")


def _format_line(token: str, info: UserInfo) -> str:
    buf = io.StringIO()
    row = [token, info.name, info.uid]
    if info.groups:
        row.append(",".join(info.groups))
    csv.writer(buf, lineterminator="\n").writerow(row)
    return buf.getvalue()


def _stamp(path: Path) -> tuple[int, int] | None:
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    return st.st_mtime_ns, st.st_size


# --- authenticator ----------------------------------------------------------------------------

class AuthenticationFailed(Exception):
    """Credentials were presented but are not valid (as opposed to no credentials at all)."""


class Authenticator:
    """Turns a request into a `UserInfo`: verified client cert first, then bearer token."""

    def __init__(self, tokens: TokenFile | None = None) -> None:
        self.tokens = tokens

    def authenticate(self, request: web.Request) -> UserInfo | None:
        """The caller, or None when anonymous or when the presented credentials are invalid."""
        try:
            return self.authenticate_strict(request)
        except AuthenticationFailed:
            return None

    def authenticate_strict(self, request: web.Request) -> UserInfo | None:
        """Like `authenticate`, but raises AuthenticationFailed for bad credentials (None = none sent)."""
        if _via_unix_socket(request):
            return INTERNAL_USER.with_authenticated_group()
        user = user_from_peercert(_peercert(request))
        if user is None:
            user = self._from_bearer(request.headers.get("Authorization"))
        return user.with_authenticated_group() if user is not None else None

    def _from_bearer(self, header: str | None) -> UserInfo | None:
        if header is None:
            return None
        scheme, _, token = header.strip().partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            return None  # not ours to judge: upstream treats other schemes as no credentials
        user = self.tokens.lookup(token) if self.tokens is not None else None
        if user is None:
            raise AuthenticationFailed("invalid bearer token")
        return user


def user_from_peercert(cert: Mapping[str, Any] | None) -> UserInfo | None:
    """CN -> user, every O -> group, from `ssl.SSLSocket.getpeercert()` (only set when verified)."""
    if not cert:
        return None
    name, groups = "", []
    for rdn in cert.get("subject", ()):
        for key, value in rdn:
            if key == "commonName":
                name = value
            elif key == "organizationName":
                groups.append(value)
    return UserInfo(name, "", tuple(groups)) if name else None


def _via_unix_socket(request: web.Request) -> bool:
    """The server's own Unix socket (mode 0600, in the data dir): only root and the server reach it,
    so it carries the in-process components' identity, like kube-apiserver's loopback client."""
    transport = request.transport
    if transport is None:
        return False
    sock = transport.get_extra_info("socket")
    return sock is not None and getattr(sock, "family", None) == socket.AF_UNIX


def _peercert(request: web.Request) -> Mapping[str, Any] | None:
    transport = request.transport
    if transport is None:
        return None
    cert = transport.get_extra_info("peercert")
    return cert if isinstance(cert, Mapping) else None


# --- authorization seam -----------------------------------------------------------------------

class Authorizer(Protocol):
    def authorize(self, user: UserInfo, *, verb: str, path: str) -> bool: ...


class AllowAuthenticated:
    """Every authenticated user may do everything (until RBAC exists)."""

    def authorize(self, user: UserInfo, *, verb: str, path: str) -> bool:
        return AUTHENTICATED_GROUP in user.groups


def is_anonymous_path(path: str) -> bool:
    """The public endpoints upstream's `system:public-info-viewer` role grants to everyone."""
    trimmed = path.rstrip("/") or "/"
    return trimmed in ANONYMOUS_PATHS or path.startswith(_ANONYMOUS_PREFIXES)


def request_verb(request: web.Request) -> str:
    """A coarse Kubernetes verb from the HTTP method (`watch` for `?watch=true`); RBAC refines it."""
    if request.method == "GET" and request.query.get("watch", "").lower() in ("1", "true"):
        return "watch"
    return _METHOD_VERBS.get(request.method, request.method.lower())


def current_user(request: web.Request) -> UserInfo | None:
    """The user the middleware stored on the request (None outside the middleware)."""
    user = request.get("user")
    return user if isinstance(user, UserInfo) else None


def auth_middleware(authenticator: Authenticator, authorizer: Authorizer) -> Middleware:
    """aiohttp middleware: authenticate, store `request["user"]`, authorize; 401/403 as Status JSON."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        public = is_anonymous_path(request.path)
        try:
            user = authenticator.authenticate_strict(request)
        except AuthenticationFailed:
            return status_response(Unauthorized("Unauthorized"))
        if user is None and not public:
            return status_response(Unauthorized("Unauthorized"))
        request["user"] = user or ANONYMOUS
        if user is not None and not public:
            verb = request_verb(request)
            if not authorizer.authorize(user, verb=verb, path=request.path):
                return status_response(forbidden(user, verb, request.path))
        return await handler(request)

    return middleware


def forbidden(user: UserInfo, verb: str, path: str) -> Forbidden:
    return Forbidden(f'forbidden: User "{user.name}" cannot {verb} path "{path}"', details={})


def status_response(error: StatusError) -> web.Response:
    return web.json_response(error.to_status(), status=error.code, headers=error.headers or None)
