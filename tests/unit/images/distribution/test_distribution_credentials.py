"""config.json keys, dockerconfigjson Secrets and the keyring's matching order."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from kubelite.images.distribution.credentials import (
    Credential,
    CredentialError,
    Keyring,
    encode_auth,
    from_secret,
    load_docker_config,
)
from kubelite.images.distribution.node import pod_keyring
from kubelite.images.distribution.registries import HUB_API_HOST
from kubelite.images.reference import LEGACY_DEFAULT_DOMAIN


def keyring(auths: dict) -> Keyring:
    return Keyring.from_docker_config({"auths": auths}, source="test")


def users(found: list[Credential]) -> list[str]:
    return [c.username for c in found]


def test_docker_hub_legacy_keys_and_hosts() -> None:
    ring = keyring({f"https://{LEGACY_DEFAULT_DOMAIN}/v1/": {"auth": encode_auth("hub", "pw")},
                    "localhost:5000": {"username": "local", "password": "pw"}})
    assert users(ring.lookup("docker.io", "library/nginx")) == ["hub"]
    assert users(ring.lookup(HUB_API_HOST, "library/nginx")) == ["hub"]
    assert users(ring.lookup("localhost:5000", "app")) == ["local"]
    assert ring.lookup("localhost:5001", "app") == []
    assert ring.lookup("localhost", "app") == []


def test_globs_paths_and_most_specific_first() -> None:
    ring = keyring({"*.example.com": {"auth": encode_auth("glob", "x")},
                    "reg.example.com": {"auth": encode_auth("host", "x")},
                    "https://reg.example.com/team": {"auth": encode_auth("team", "x")},
                    "reg.example.com/team/app": {"auth": encode_auth("app", "x")}})
    assert users(ring.lookup("reg.example.com", "team/app")) == ["app", "team", "host", "glob"]
    assert users(ring.lookup("reg.example.com", "team/other")) == ["team", "host", "glob"]
    assert users(ring.lookup("reg.example.com", "teams")) == ["host", "glob"]
    assert users(ring.lookup("a.b.example.com", "x")) == []  # a glob matches one label


def test_pod_secrets_come_before_node_credentials() -> None:
    node = keyring({"localhost:5000": {"auth": encode_auth("node", "x")}})
    pod = keyring({"localhost:5000": {"auth": encode_auth("pod", "x")}})
    assert users((pod + node).lookup("localhost:5000", "a")) == ["pod", "node"]


def secret(kind: str, key: str, doc: object, name: str = "regcred") -> dict:
    data = base64.b64encode(json.dumps(doc).encode()).decode()
    return {"metadata": {"name": name, "namespace": "ns"}, "type": kind, "data": {key: data}}


def test_secrets_of_both_docker_types() -> None:
    new = secret("kubernetes.io/dockerconfigjson", ".dockerconfigjson",
                 {"auths": {"localhost:5000": {"auth": encode_auth("u1", "p1")}}})
    old = secret("kubernetes.io/dockercfg", ".dockercfg", {"localhost:5000": {"auth": encode_auth("u2", "p2")}})
    [first, second] = pod_keyring([new, old, {"type": "Opaque", "data": {}}]).lookup("localhost:5000", "x")
    assert (first.username, first.password, first.source) == ("u1", "p1", "secret ns/regcred")
    assert second.username == "u2"
    assert "p1" not in repr(first)


@pytest.mark.parametrize(("obj", "message"), [
    ({"type": "Opaque"}, "not kubernetes.io/dockerconfigjson"),
    ({"type": "kubernetes.io/dockerconfigjson", "data": {}}, "no .dockerconfigjson"),
    ({"type": "kubernetes.io/dockerconfigjson", "data": {".dockerconfigjson": "%%%"}}, "base64"),
    (secret("kubernetes.io/dockerconfigjson", ".dockerconfigjson", {"auths": {"r": {"auth": "bm9jb2xvbg=="}}}),
     "user:password"),
])
def test_bad_secrets(obj: dict, message: str) -> None:
    with pytest.raises(CredentialError, match=message):
        from_secret(obj)


def test_config_files(tmp_path: Path) -> None:
    assert len(load_docker_config(tmp_path / "absent.json")) == 0
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"auths": {"r:1": {"identitytoken": "tok"}}}))
    [cred] = load_docker_config(path).lookup("r:1")
    assert cred.identity_token == "tok" and cred.source == str(path)
    path.write_text("{")
    with pytest.raises(CredentialError, match="not JSON"):
        load_docker_config(path)
