"""Unit tests for kubelite.api.auth: token file parsing, authenticators, the middleware's answers."""

from __future__ import annotations

import json
import stat
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from aiohttp import web
from aiohttp.test_utils import make_mocked_request

from kubelite.api.auth import (
    ANONYMOUS,
    AllowAuthenticated,
    Authenticator,
    TokenFile,
    UserInfo,
    auth_middleware,
    is_anonymous_path,
    new_token,
    parse_token_csv,
    user_from_peercert,
)

ADMIN_PEERCERT = {"subject": ((("organizationName", "system:masters"),),
                              (("organizationName", "extra"),),
                              (("commonName", "kubernetes-admin"),))}


def _request(path: str = "/api", *, headers: dict[str, str] | None = None,
             peercert: dict[str, Any] | None = None, method: str = "GET") -> web.Request:
    transport = mock.Mock()
    transport.get_extra_info.side_effect = lambda key, default=None: peercert if key == "peercert" else default
    return make_mocked_request(method, path, headers=headers or {}, transport=transport)


@pytest.fixture
def tokens(tmp_path: Path) -> TokenFile:
    path = tmp_path / "tokens.csv"
    path.write_text(
        "# comment line\n"
        "tok-admin,admin,uid-1,\"system:masters,devs\"\n"
        "tok-plain,alice,uid-2\n"
        "\n"
        "short,line\n"
        ",nouser-token,uid\n"
        "tok-spaced, bob , uid-3 , \" g1 , g2 \"\n"
    )
    return TokenFile(path)


# --- token file -------------------------------------------------------------------------------

def test_token_file_parses_quoted_groups(tokens: TokenFile) -> None:
    assert tokens.lookup("tok-admin") == UserInfo("admin", "uid-1", ("system:masters", "devs"))
    assert tokens.lookup("tok-plain") == UserInfo("alice", "uid-2", ())
    assert tokens.lookup("tok-spaced") == UserInfo("bob", "uid-3", ("g1", "g2"))


def test_token_file_skips_bad_lines_and_unknown_tokens(tokens: TokenFile) -> None:
    assert tokens.lookup("short") is None
    assert tokens.lookup("") is None
    assert tokens.lookup("nope") is None
    assert len(parse_token_csv(tokens.path.read_text())) == 3


def test_token_file_later_duplicate_wins() -> None:
    entries = parse_token_csv("t,a,1\nt,b,2\n")
    assert [u.name for _, u in entries] == ["a", "b"]


def test_token_file_add_appends_and_reloads(tmp_path: Path) -> None:
    path = tmp_path / "tokens.csv"
    tf = TokenFile(path)
    assert tf.lookup("x") is None
    token = new_token()
    tf.add(token, "system:node:n1", ["system:nodes"])
    tf.add("t2", "admin", ["system:masters", "devs"], uid="u")
    tf.add("t2", "admin", ["system:masters", "devs"], uid="u")  # idempotent
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    fresh = TokenFile(path)
    assert fresh.lookup(token) == UserInfo("system:node:n1", "", ("system:nodes",))
    assert fresh.lookup("t2") == UserInfo("admin", "u", ("system:masters", "devs"))
    assert path.read_text().count("\n") == 2
    with pytest.raises(ValueError):
        tf.add("t2", "someone-else")


def test_token_file_add_after_unterminated_line(tmp_path: Path) -> None:
    path = tmp_path / "tokens.csv"
    path.write_text("a,alice,1")
    tf = TokenFile(path)
    tf.add("b", "bob")
    assert TokenFile(path).lookup("a") == UserInfo("alice", "1")
    assert TokenFile(path).lookup("b") == UserInfo("bob")


def test_token_file_notices_external_edits(tmp_path: Path) -> None:
    path = tmp_path / "tokens.csv"
    tf = TokenFile(path)
    path.write_text("ext,eve,9\n")
    assert tf.lookup("ext") == UserInfo("eve", "9")


@pytest.mark.parametrize("bad", ["", "a,b", "a b", 'a"b', "a\nb"])
def test_token_file_add_rejects_unsafe_tokens(tmp_path: Path, bad: str) -> None:
    with pytest.raises(ValueError):
        TokenFile(tmp_path / "t.csv").add(bad, "u")


# --- authenticator ----------------------------------------------------------------------------

def test_peercert_to_user() -> None:
    user = user_from_peercert(ADMIN_PEERCERT)
    assert user == UserInfo("kubernetes-admin", "", ("system:masters", "extra"))
    assert user_from_peercert(None) is None
    assert user_from_peercert({}) is None


def test_authenticate_by_cert_first(tokens: TokenFile) -> None:
    req = _request(peercert=ADMIN_PEERCERT, headers={"Authorization": "Bearer tok-plain"})
    user = Authenticator(tokens).authenticate(req)
    assert user is not None and user.name == "kubernetes-admin"
    assert user.groups == ("system:masters", "extra", "system:authenticated")


def test_authenticate_by_token(tokens: TokenFile) -> None:
    user = Authenticator(tokens).authenticate(_request(headers={"Authorization": "bearer  tok-admin "}))
    assert user == UserInfo("admin", "uid-1", ("system:masters", "devs", "system:authenticated"))


def test_authenticate_anonymous_and_bad_token(tokens: TokenFile) -> None:
    auth = Authenticator(tokens)
    assert auth.authenticate(_request()) is None
    assert auth.authenticate(_request(headers={"Authorization": "Bearer wrong"})) is None
    assert auth.authenticate(_request(headers={"Authorization": "Basic YTpi"})) is None
    assert Authenticator(None).authenticate(_request(headers={"Authorization": "Bearer tok-admin"})) is None


@pytest.mark.parametrize("path,public", [
    ("/healthz", True), ("/livez", True), ("/readyz", True), ("/version", True), ("/version/", True),
    ("/readyz/etcd", True), ("/healthz/ping", True), ("/api", False), ("/", False),
    ("/healthzz", False), ("/versions", False), ("/apis/version", False),
])
def test_anonymous_paths(path: str, public: bool) -> None:
    assert is_anonymous_path(path) is public


# --- middleware -------------------------------------------------------------------------------

class DenyAll:
    def authorize(self, user: UserInfo, *, verb: str, path: str) -> bool:
        return False


async def _run(req: web.Request, tokens: TokenFile, authorizer: Any = None) -> tuple[web.StreamResponse, Any]:
    seen: dict[str, Any] = {}

    async def handler(request: web.Request) -> web.StreamResponse:
        seen["user"] = request["user"]
        return web.Response(text="ok")

    mw = auth_middleware(Authenticator(tokens), authorizer or AllowAuthenticated())
    return await mw(req, handler), seen.get("user")


def _body(resp: web.StreamResponse) -> dict[str, Any]:
    assert isinstance(resp, web.Response) and resp.body is not None
    assert resp.content_type == "application/json"
    return json.loads(bytes(resp.body))  # type: ignore[arg-type]


async def test_middleware_401_status_for_anonymous(tokens: TokenFile) -> None:
    resp, user = await _run(_request("/api"), tokens)
    assert resp.status == 401 and user is None
    assert _body(resp) == {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                           "message": "Unauthorized", "reason": "Unauthorized", "code": 401}


async def test_middleware_public_paths_anonymous(tokens: TokenFile) -> None:
    resp, user = await _run(_request("/readyz?verbose"), tokens)
    assert resp.status == 200 and user == ANONYMOUS


async def test_middleware_bad_token_is_401_even_on_public_path(tokens: TokenFile) -> None:
    resp, _ = await _run(_request("/version", headers={"Authorization": "Bearer nope"}), tokens)
    assert resp.status == 401


async def test_middleware_stores_user(tokens: TokenFile) -> None:
    resp, user = await _run(_request("/api", peercert=ADMIN_PEERCERT), tokens)
    assert resp.status == 200 and user.name == "kubernetes-admin"


async def test_middleware_forbidden(tokens: TokenFile) -> None:
    req = _request("/api/v1/pods", headers={"Authorization": "Bearer tok-plain"}, method="DELETE")
    resp, user = await _run(req, tokens, DenyAll())
    assert resp.status == 403 and user is None
    body = _body(resp)
    assert body["reason"] == "Forbidden" and body["code"] == 403
    assert body["message"] == 'forbidden: User "alice" cannot delete path "/api/v1/pods"'
