"""WWW-Authenticate challenges and token requests (pure parts of the auth flow)."""

from __future__ import annotations

import pytest

from kubelite.images.distribution.auth import (
    Challenge,
    parse_challenges,
    pick_challenge,
    token_from_response,
    token_request,
)
from kubelite.images.distribution.credentials import Credential
from kubelite.images.distribution.errors import AuthError


def test_bearer_challenge_as_docker_hub_sends_it() -> None:
    header = ('Bearer realm="https://auth.example/token",service="registry.example",'
              'scope="repository:library/nginx:pull"')
    [challenge] = parse_challenges(header)
    assert challenge.scheme == "bearer"
    assert challenge.params == {"realm": "https://auth.example/token", "service": "registry.example",
                                "scope": "repository:library/nginx:pull"}


def test_several_challenges_spaces_escapes_and_tokens() -> None:
    header = 'Basic realm="a \\"quoted\\" realm, with comma" , Bearer  realm = "https://t/x" ,error=insufficient_scope'
    basic, bearer = parse_challenges(header)
    assert basic == Challenge("basic", {"realm": 'a "quoted" realm, with comma'})
    assert bearer.params == {"realm": "https://t/x", "error": "insufficient_scope"}
    assert pick_challenge([basic, bearer]) is bearer
    assert pick_challenge(parse_challenges("Negotiate")) is None


def test_challenges_from_several_headers_and_garbage() -> None:
    found = parse_challenges(['Basic realm="r"', "", '@@ Bearer realm="https://x/t"'])
    assert [c.scheme for c in found] == ["basic", "bearer"]
    assert parse_challenges('realm="orphan"') == []


def test_anonymous_and_basic_token_requests() -> None:
    challenge = parse_challenges('Bearer realm="https://auth/token",service="reg",scope="repository:a:pull"')[0]
    anon = token_request(challenge, ["repository:a:pull"], None)
    assert (anon.method, anon.url, anon.authorization) == ("GET", "https://auth/token", "")
    assert anon.query == [("service", "reg"), ("scope", "repository:a:pull")]
    push = token_request(challenge, ["repository:b:pull,push", "repository:a:pull"], Credential("me", "pw"))
    assert push.query == [("service", "reg"), ("scope", "repository:b:pull,push"), ("scope", "repository:a:pull"),
                          ("account", "me")]
    assert push.authorization == "Basic bWU6cHc="


def test_identity_token_is_a_refresh_token_post() -> None:
    challenge = Challenge("bearer", {"realm": "https://auth/token", "service": "reg"})
    request = token_request(challenge, ["repository:a:pull"], Credential(identity_token="refresh"))
    assert request.method == "POST" and request.form is not None
    assert request.form["grant_type"] == "refresh_token" and request.form["refresh_token"] == "refresh"
    assert request.form["scope"] == "repository:a:pull"


def test_realm_must_be_a_url() -> None:
    with pytest.raises(AuthError, match="realm"):
        token_request(Challenge("bearer", {"realm": "nowhere"}), [], None)


@pytest.mark.parametrize(("doc", "token", "expiry"), [
    ({"token": "t1", "expires_in": 300}, "t1", 1290.0),
    ({"access_token": "t2"}, "t2", 1050.0),
    ({"token": "t3", "expires_in": "bogus"}, "t3", 1050.0),
])
def test_token_answers(doc: dict, token: str, expiry: float) -> None:
    assert token_from_response(doc, now=1000.0) == (token, expiry)


@pytest.mark.parametrize("doc", [{}, {"token": ""}, ["token"]])
def test_token_answers_without_a_token(doc: object) -> None:
    with pytest.raises(AuthError):
        token_from_response(doc, now=0)
