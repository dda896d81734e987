"""Where the requests for a registry name go: plain HTTP or TLS, mirrors, repository rewrites.

The name in an image reference (`localhost:5000`, `docker.io`) is not always where its requests
should go: a node in its own network namespace reaches the host's `localhost:5000` at the host's
bridge address, and Docker Hub's API lives on another host than `docker.io`. `RegistryHosts`
holds those decisions as data; `pull_endpoints` and `push_endpoint` apply them (pure functions).

`<data-dir>/registries.yaml` uses k3s's format, plus a list of plain-HTTP registries:

    mirrors:
      localhost:5000:                          # a registry name as images spell it
        endpoint: ["http://198.19.128.1:5000"] # tried in order before the registry itself
      docker.io:
        endpoint: ["https://mirror.internal:5000"]
        rewrite:                               # on this name's mirrors: repository regex -> replacement
          "^library/(.*)": "hub/$1"
      "*":                                     # every registry without an entry of its own
        endpoint: ["http://cache.internal:5000"]
    configs:
      mirror.internal:5000:                    # an endpoint's (or registry's) host
        auth: {username: me, password: secret} # or {auth: base64(user:pass)}, or {identity_token: ...}
        tls: {ca_file: /etc/ssl/mirror-ca.pem, insecure_skip_verify: false}
    insecure:                                  # plain HTTP: host:port, host (any port), host:*, or a CIDR
      - 10.0.0.5:5000
      - 198.19.0.0/16

Loopback registries (`localhost`, `127.0.0.0/8`, `::1`, any port) are plain HTTP by default, as
Docker treats them. An endpoint URL's scheme wins; an endpoint without one is HTTPS unless its host
is plain HTTP. Pulls try the mirrors, then the registry itself; pushes go to the registry itself
(mirrors serve pulls, as in containerd and k3s). The CLI flags `--insecure-registry HOST` and
`--registry-mirror NAME=URL` add to the file's settings (`with_flags`).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from kubelite.images.reference import DEFAULT_DOMAIN, LEGACY_DEFAULT_DOMAIN

# Docker Hub's images are named docker.io/..., its distribution API answers on another host.
HUB_API_HOST = "registry-1." + DEFAULT_DOMAIN
HUB_HOST_ALIASES = frozenset({DEFAULT_DOMAIN, LEGACY_DEFAULT_DOMAIN, HUB_API_HOST})
LOOPBACK_NAMES = ("localhost",)
DEFAULT_CONFIG_NAME = "registries.yaml"


class RegistryConfigError(ValueError):
    """A registries.yaml or flag that cannot be used; the message names it."""


@dataclass(frozen=True)
class Tls:
    ca_file: str = ""
    insecure_skip_verify: bool = False


@dataclass(frozen=True)
class Auth:
    """Credentials from registries.yaml (`configs.<host>.auth`)."""
    username: str = ""
    password: str = ""
    identity_token: str = ""


@dataclass(frozen=True)
class HostConfig:
    tls: Tls = Tls()
    auth: Auth | None = None


@dataclass(frozen=True)
class Mirror:
    endpoints: tuple[str, ...] = ()
    rewrites: tuple[tuple[str, str], ...] = ()  # (regex, replacement with $1 groups), first match wins


@dataclass(frozen=True)
class Endpoint:
    """One place to send a registry's requests."""
    registry: str  # the name images use: localhost:5000, docker.io
    base_url: str  # scheme://host[:port], no trailing slash
    host: str  # host[:port] of base_url (what configs and credentials are keyed by)
    mirror: bool = False
    rewrites: tuple[tuple[str, str], ...] = ()
    tls: Tls = Tls()
    auth: Auth | None = None

    @property
    def plain_http(self) -> bool:
        return self.base_url.startswith("http://")

    def repository(self, path: str) -> str:
        """The repository path on this endpoint (rewrites apply on mirrors only)."""
        for pattern, replacement in self.rewrites:
            if re.search(pattern, path):
                return re.sub(pattern, re.sub(r"\$(\d+)", r"\\\1", replacement), path, count=1)
        return path


@dataclass(frozen=True)
class RegistryHosts:
    mirrors: Mapping[str, Mirror] = field(default_factory=dict)
    configs: Mapping[str, HostConfig] = field(default_factory=dict)
    insecure: tuple[str, ...] = ()
    only: tuple[str, ...] = ()  # when set, pulls reach these hosts (host:port) and no others

    # -- decisions (pure) -------------------------------------------------------------------------

    def is_plain_http(self, host: str) -> bool:
        hostname, port = split_host(host)
        if hostname in LOOPBACK_NAMES or _in_network(hostname, "127.0.0.0/8") or hostname == "::1":
            return True
        return any(_insecure_match(pattern, hostname, port) for pattern in self.insecure)

    def pull_endpoints(self, registry: str) -> list[Endpoint]:
        """Where to pull `registry`'s images from, in order: its mirrors, then itself (only those
        `only` allows, when set: none at all for a registry it does not cover)."""
        mirror = self.mirrors.get(registry) or self.mirrors.get("*")
        endpoints = []
        for url in (mirror.endpoints if mirror else ()):
            endpoint = self._endpoint(registry, url, mirror=True, rewrites=mirror.rewrites if mirror else ())
            if endpoint.base_url != self.push_endpoint(registry).base_url:
                endpoints.append(endpoint)
        candidates = [*endpoints, self.push_endpoint(registry)]
        return [e for e in candidates if e.host in self.only] if self.only else candidates

    def push_endpoint(self, registry: str) -> Endpoint:
        """The registry itself (Docker Hub's name maps to its API host)."""
        host = HUB_API_HOST if registry == DEFAULT_DOMAIN else registry
        return self._endpoint(registry, host, mirror=False, config_key=registry)

    def _endpoint(self, registry: str, url: str, *, mirror: bool, rewrites: tuple[tuple[str, str], ...] = (),
                  config_key: str = "") -> Endpoint:
        scheme, _, rest = url.rpartition("://")
        host = rest.split("/", 1)[0]
        if not scheme:
            scheme = "http" if self.is_plain_http(host) else "https"
        config = self.configs.get(host) or (self.configs.get(config_key) if config_key else None) or HostConfig()
        return Endpoint(registry, f"{scheme}://{host}", host, mirror, rewrites, config.tls, config.auth)

    # -- building -----------------------------------------------------------------------------------

    def with_flags(self, *, insecure: Iterable[str] = (), mirrors: Iterable[str] = (),
                   only: Iterable[str] = ()) -> RegistryHosts:
        """Add `--insecure-registry HOST`, `--registry-mirror NAME=URL` and `--pull-only-from HOST`
        values."""
        merged = dict(self.mirrors)
        for flag in mirrors:
            name, sep, url = flag.partition("=")
            if not sep or not name or not url:
                raise RegistryConfigError(f"--registry-mirror {flag!r}: expected NAME=URL, "
                                          "e.g. localhost:5000=http://198.19.128.1:5000")
            _check_url(url, f"--registry-mirror {flag!r}")
            old = merged.get(name, Mirror())
            merged[name] = replace(old, endpoints=(*old.endpoints, url.rstrip("/")))
        extra = tuple(_check_insecure(h, "--insecure-registry") for h in insecure)
        return replace(self, mirrors=merged, insecure=(*self.insecure, *extra), only=(*self.only, *only))

    @classmethod
    def load(cls, path: Path, *, missing_ok: bool = True) -> RegistryHosts:
        try:
            text = path.read_text()
        except FileNotFoundError:
            if missing_ok:
                return cls()
            raise RegistryConfigError(f"{path}: no such file") from None
        except OSError as e:
            raise RegistryConfigError(f"{path}: {e.strerror}") from None
        return cls.from_yaml(text, source=str(path))

    @classmethod
    def from_yaml(cls, text: str, *, source: str = "registries.yaml") -> RegistryHosts:
        import yaml

        try:
            doc = yaml.safe_load(text)
        except yaml.YAMLError as e:
            raise RegistryConfigError(f"{source}: not valid YAML: {e}") from None
        return cls.from_dict(doc or {}, source=source)

    @classmethod
    def from_dict(cls, doc: Any, *, source: str = "registries.yaml") -> RegistryHosts:
        doc = _mapping(doc, source)
        unknown = set(doc) - {"mirrors", "configs", "insecure"}
        if unknown:
            raise RegistryConfigError(f"{source}: unknown keys {sorted(unknown)} (expected mirrors, configs, insecure)")
        mirrors = {str(k): _mirror(v, f"{source}: mirrors.{k}") for k, v in _mapping(doc.get("mirrors"), source).items()}
        configs = {str(k): _host_config(v, f"{source}: configs.{k}")
                   for k, v in _mapping(doc.get("configs"), source).items()}
        insecure = doc.get("insecure") or []
        if not isinstance(insecure, list):
            raise RegistryConfigError(f"{source}: insecure must be a list of hosts")
        return cls(mirrors, configs, tuple(_check_insecure(str(h), f"{source}: insecure") for h in insecure))


def default_config_path(data_dir: Path) -> Path:
    return data_dir / DEFAULT_CONFIG_NAME


def split_host(host: str) -> tuple[str, str]:
    """`host:port` -> (host, port); `[::1]:5000` -> ("::1", "5000"); no port -> (host, "")."""
    if host.startswith("["):
        inner, _, rest = host[1:].partition("]")
        return inner, rest.removeprefix(":")
    if host.count(":") == 1:
        name, _, port = host.partition(":")
        return name, port
    return host, ""


def _insecure_match(pattern: str, hostname: str, port: str) -> bool:
    if "/" in pattern:
        return _in_network(hostname, pattern)
    want_host, want_port = split_host(pattern)
    if want_host != hostname:
        return False
    return want_port in ("", "*") or want_port == port


def _in_network(hostname: str, cidr: str) -> bool:
    try:
        return ipaddress.ip_address(hostname) in ipaddress.ip_network(cidr, strict=False)
    except ValueError:
        return False


def _check_insecure(value: str, where: str) -> str:
    value = value.strip()
    if "://" in value or not value:
        raise RegistryConfigError(f"{where} {value!r}: give a host[:port] or a CIDR, without a scheme")
    if "/" in value:
        try:
            ipaddress.ip_network(value, strict=False)
        except ValueError:
            raise RegistryConfigError(f"{where} {value!r}: not a host[:port] or a CIDR") from None
    return value


def _check_url(url: str, where: str) -> None:
    scheme, sep, rest = url.rpartition("://")
    if (sep and scheme not in ("http", "https")) or not rest or rest.startswith("/"):
        raise RegistryConfigError(f"{where}: {url!r} is not an http(s)://host[:port] URL")


def _mapping(value: Any, where: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise RegistryConfigError(f"{where}: expected a mapping, got {type(value).__name__}")
    return value


def _mirror(value: Any, where: str) -> Mirror:
    value = _mapping(value, where)
    endpoints = value.get("endpoint") or []
    if isinstance(endpoints, str):
        endpoints = [endpoints]
    if not isinstance(endpoints, list):
        raise RegistryConfigError(f"{where}.endpoint: expected a list of URLs")
    for url in endpoints:
        _check_url(str(url), f"{where}.endpoint")
    rewrites = _mapping(value.get("rewrite"), f"{where}.rewrite")
    for pattern in rewrites:
        try:
            re.compile(str(pattern))
        except re.error as e:
            raise RegistryConfigError(f"{where}.rewrite {pattern!r}: {e}") from None
    return Mirror(tuple(str(u).rstrip("/") for u in endpoints), tuple((str(k), str(v)) for k, v in rewrites.items()))


def _host_config(value: Any, where: str) -> HostConfig:
    value = _mapping(value, where)
    tls = _mapping(value.get("tls"), f"{where}.tls")
    auth = _mapping(value.get("auth"), f"{where}.auth")
    parsed_auth = None
    if auth:
        username, password = str(auth.get("username") or ""), str(auth.get("password") or "")
        if auth.get("auth"):
            from kubelite.images.distribution.credentials import CredentialError, decode_auth

            try:
                username, password = decode_auth(str(auth["auth"]), f"{where}.auth")
            except CredentialError as e:
                raise RegistryConfigError(str(e)) from None
        parsed_auth = Auth(username, password, str(auth.get("identity_token") or auth.get("identitytoken") or ""))
    return HostConfig(Tls(str(tls.get("ca_file") or ""), bool(tls.get("insecure_skip_verify"))), parsed_auth)
