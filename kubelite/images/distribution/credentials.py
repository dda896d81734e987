"""Registry credentials: docker-style config.json files, `kubernetes.io/dockerconfigjson` Secrets,
and the keyring that picks the ones for an image.

    {"auths": {"localhost:5000": {"auth": "<base64 user:password>"},
               "https://registry.example/v1/": {"username": "u", "password": "p"},
               "*.example": {"identitytoken": "<refresh token>"}}}

A key is matched against the image's registry and repository the way the kubelet's keyring does
(`credentialprovider.URLsMatch`): the scheme is ignored, the host must have as many dot-separated
labels as the key and each label must match it (`*` globs allowed), the ports must be equal, and the
key's path must be a prefix of the repository. Docker Hub's legacy keys (`<legacy Hub domain>/v1/`
and friends) are keyed as `docker.io`. Matches come back most specific first; the kubelet tries
them in that order, pod Secrets before the node's own files.

Pure, except `load_docker_config` (reads a file) and `default_config_paths` (looks at the
environment).
"""

from __future__ import annotations

import base64
import binascii
import fnmatch
import json
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kubelite.images.distribution.registries import HUB_HOST_ALIASES
from kubelite.images.reference import DEFAULT_DOMAIN

DOCKER_CONFIG_JSON = "kubernetes.io/dockerconfigjson"
DOCKER_CFG = "kubernetes.io/dockercfg"


class CredentialError(ValueError):
    """A config file or Secret whose credentials cannot be read."""


@dataclass(frozen=True)
class Credential:
    username: str = ""
    password: str = ""
    identity_token: str = ""  # an OAuth2 refresh token (docker login with a token service)
    registry_token: str = ""  # a bearer token sent as it is
    source: str = ""  # where it came from, for messages ("secret default/regcred")

    def __repr__(self) -> str:  # never print secrets in logs or tracebacks
        return f"Credential(username={self.username!r}, source={self.source!r})"


@dataclass(frozen=True)
class _Entry:
    host: str  # lower-case host pattern, port included
    path: str  # repository prefix, "" for any
    credential: Credential

    def matches(self, host: str, repository: str) -> bool:
        return _host_matches(self.host, host.lower()) and _path_matches(self.path, repository)

    @property
    def specificity(self) -> tuple[bool, int, int]:
        return ("*" not in self.host, len(self.path), len(self.host))


class Keyring:
    """Credentials by registry key; `lookup` returns the matches, most specific first."""

    def __init__(self, entries: Iterable[_Entry] = ()) -> None:
        self._entries = list(entries)

    def __len__(self) -> int:
        return len(self._entries)

    def __add__(self, other: Keyring) -> Keyring:
        """`self`'s credentials before `other`'s (pod Secrets before the node's files)."""
        return Keyring([*self._entries, *other._entries])

    def lookup(self, registry: str, repository: str = "") -> list[Credential]:
        host = canonical_host(registry)
        found = [e for e in self._entries if e.matches(host, repository)]
        # a stable sort keeps the sources' order among equally specific keys
        found.sort(key=lambda e: e.specificity, reverse=True)
        out: list[Credential] = []
        for entry in found:
            if entry.credential not in out:
                out.append(entry.credential)
        return out

    @classmethod
    def from_docker_config(cls, doc: Any, *, source: str) -> Keyring:
        """A config.json document (`{"auths": {...}}`) or the legacy .dockercfg map of keys."""
        if not isinstance(doc, dict):
            raise CredentialError(f"{source}: not a JSON object")
        auths = doc.get("auths") if "auths" in doc else doc
        if not isinstance(auths, dict):
            raise CredentialError(f"{source}: auths is not a JSON object")
        entries = []
        for key, value in auths.items():
            if not isinstance(value, dict):
                raise CredentialError(f"{source}: the entry for {key!r} is not a JSON object")
            host, path = split_key(str(key))
            entries.append(_Entry(host, path, _credential(value, source=source, key=str(key))))
        return cls(entries)


def decode_auth(value: str, where: str) -> tuple[str, str]:
    """config.json's `auth`: base64 of `user:password`."""
    try:
        text = base64.b64decode(value.strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        raise CredentialError(f"{where}: auth is not base64 of user:password") from None
    user, sep, password = text.partition(":")
    if not sep:
        raise CredentialError(f"{where}: auth does not decode to user:password")
    return user, password


def encode_auth(username: str, password: str) -> str:
    return base64.b64encode(f"{username}:{password}".encode()).decode()


def _credential(value: dict[str, Any], *, source: str, key: str) -> Credential:
    username, password = str(value.get("username") or ""), str(value.get("password") or "")
    if value.get("auth"):
        username, password = decode_auth(str(value["auth"]), f"{source}: {key}")
    return Credential(username, password, str(value.get("identitytoken") or ""),
                      str(value.get("registrytoken") or ""), source)


def canonical_host(registry: str) -> str:
    host = registry.lower()
    return DEFAULT_DOMAIN if host in HUB_HOST_ALIASES else host


def split_key(key: str) -> tuple[str, str]:
    """A config.json key -> (host pattern, repository prefix)."""
    rest = key.strip().lower().split("://", 1)[-1]
    host, _, path = rest.partition("/")
    host = canonical_host(host)
    path = path.strip("/")
    if host == DEFAULT_DOMAIN and path in ("v1", "v2"):  # Docker Hub's legacy key
        path = ""
    return host, path


def _host_matches(pattern: str, host: str) -> bool:
    pattern_name, _, pattern_port = pattern.partition(":") if pattern.count(":") == 1 else (pattern, "", "")
    name, _, port = host.partition(":") if host.count(":") == 1 else (host, "", "")
    if pattern_port != port:
        return False
    labels, want = pattern_name.split("."), name.split(".")
    return len(labels) == len(want) and all(fnmatch.fnmatchcase(w, p) for p, w in zip(labels, want, strict=True))


def _path_matches(prefix: str, repository: str) -> bool:
    return not prefix or repository == prefix or repository.startswith(prefix + "/")


# -- sources ---------------------------------------------------------------------------------------

def load_docker_config(path: Path) -> Keyring:
    """A config.json file; a missing file is an empty keyring."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return Keyring()
    except OSError as e:
        raise CredentialError(f"{path}: {e.strerror}") from None
    try:
        doc = json.loads(data)
    except ValueError as e:
        raise CredentialError(f"{path}: not JSON: {e}") from None
    return Keyring.from_docker_config(doc, source=str(path))


def from_secret(secret: dict[str, Any]) -> Keyring:
    """A `kubernetes.io/dockerconfigjson` (or legacy `kubernetes.io/dockercfg`) Secret."""
    meta = secret.get("metadata") or {}
    source = f"secret {meta.get('namespace', '')}/{meta.get('name', '')}"
    kind = secret.get("type")
    key = {DOCKER_CONFIG_JSON: ".dockerconfigjson", DOCKER_CFG: ".dockercfg"}.get(str(kind))
    if key is None:
        raise CredentialError(f"{source} has type {kind!r}, not {DOCKER_CONFIG_JSON}")
    encoded = (secret.get("data") or {}).get(key)
    if not encoded:
        raise CredentialError(f"{source} has no {key} key")
    try:
        doc = json.loads(base64.b64decode(encoded))
    except (binascii.Error, ValueError):
        raise CredentialError(f"{source}: {key} is not base64-encoded JSON") from None
    return Keyring.from_docker_config(doc, source=source)


def default_config_paths(data_dir: Path | None) -> list[Path]:
    """Node-wide config.json files, first wins: `<data-dir>/config.json` (where `kubelite image
    login` writes, and where upstream's kubelet looks in its root dir), then Docker's own."""
    paths = [data_dir / "config.json"] if data_dir is not None else []
    docker_dir = os.environ.get("DOCKER_CONFIG")
    paths.append(Path(docker_dir) / "config.json" if docker_dir else Path.home() / ".docker" / "config.json")
    return paths


def node_keyring(data_dir: Path | None) -> Keyring:
    keyring = Keyring()
    for path in default_config_paths(data_dir):
        keyring = keyring + load_docker_config(path)
    return keyring


# -- `kubelite image login` / `logout` ---------------------------------------------------------------

def save_login(path: Path, registry: str, username: str, password: str) -> None:
    """Record credentials for `registry` in a config.json (created 0600; other keys kept)."""
    doc = _read_config(path)
    auths = doc.setdefault("auths", {})
    for key in [k for k in auths if split_key(k) == (canonical_host(registry), "")]:
        del auths[key]
    auths[canonical_host(registry)] = {"auth": encode_auth(username, password)}
    _write_config(path, doc)


def remove_login(path: Path, registry: str) -> bool:
    """Forget `registry`'s credentials; False when there were none."""
    doc = _read_config(path)
    auths = doc.get("auths") or {}
    keys = [k for k in auths if split_key(k) == (canonical_host(registry), "")]
    for key in keys:
        del auths[key]
    if keys:
        _write_config(path, doc)
    return bool(keys)


def _read_config(path: Path) -> dict[str, Any]:
    try:
        doc = json.loads(path.read_bytes())
    except FileNotFoundError:
        return {}
    except ValueError as e:
        raise CredentialError(f"{path}: not JSON ({e}); fix or remove it") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("auths", {}), dict):
        raise CredentialError(f"{path}: not a docker config.json; fix or remove it")
    return doc


def _write_config(path: Path, doc: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")
    os.replace(tmp, path)
