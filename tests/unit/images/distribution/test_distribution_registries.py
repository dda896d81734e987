"""Reference -> registry endpoint mapping, registries.yaml parsing and the CLI flags."""

from __future__ import annotations

from pathlib import Path

import pytest

from kubelite.images.distribution.registries import HUB_API_HOST, RegistryConfigError, RegistryHosts
from kubelite.images.reference import LEGACY_DEFAULT_DOMAIN, parse

CONFIG = """
mirrors:
  localhost:5000:
    endpoint: ["http://198.19.128.1:5000"]
  docker.io:
    endpoint: ["mirror.internal:5000", "https://second.internal"]
    rewrite:
      "^library/(.*)": "hub/$1"
  "*":
    endpoint: ["http://cache.internal:5000"]
configs:
  mirror.internal:5000:
    auth: {username: me, password: secret}
    tls: {ca_file: /etc/ca.pem}
  private.example:
    auth: {auth: "dTpw"}
    tls: {insecure_skip_verify: true}
insecure:
  - mirror.internal:5000
  - 10.0.0.0/8
"""


def urls(hosts: RegistryHosts, image: str) -> list[str]:
    ref = parse(image)
    return [f"{e.base_url}/v2/{e.repository(ref.path)}" for e in hosts.pull_endpoints(ref.domain)]


def test_defaults_map_names_to_their_endpoints() -> None:
    hosts = RegistryHosts()
    assert urls(hosts, "nginx") == [f"https://{HUB_API_HOST}/v2/library/nginx"]
    assert urls(hosts, f"{LEGACY_DEFAULT_DOMAIN}/foo/bar") == [f"https://{HUB_API_HOST}/v2/foo/bar"]
    assert urls(hosts, "localhost:5000/app") == ["http://localhost:5000/v2/app"]
    assert urls(hosts, "127.0.0.1:5000/a/b") == ["http://127.0.0.1:5000/v2/a/b"]
    assert urls(hosts, "[::1]:5000/app") == ["http://[::1]:5000/v2/app"]
    assert urls(hosts, "registry.example:443/team/app") == ["https://registry.example:443/v2/team/app"]
    assert hosts.push_endpoint("docker.io").host == HUB_API_HOST  # Docker Hub's API host
    assert hosts.push_endpoint("docker.io").registry == "docker.io"


def test_the_yaml_file_mirrors_rewrites_tls_and_auth() -> None:
    hosts = RegistryHosts.from_yaml(CONFIG)
    assert urls(hosts, "localhost:5000/hello:1.0") == ["http://198.19.128.1:5000/v2/hello",
                                                       "http://localhost:5000/v2/hello"]
    assert urls(hosts, "busybox") == ["http://mirror.internal:5000/v2/hub/busybox",
                                      "https://second.internal/v2/hub/busybox",
                                      f"https://{HUB_API_HOST}/v2/library/busybox"]
    assert urls(hosts, "other.example/x") == ["http://cache.internal:5000/v2/x", "https://other.example/v2/x"]
    mirror = hosts.pull_endpoints("docker.io")[0]
    assert mirror.mirror and mirror.auth is not None and mirror.auth.username == "me"
    assert mirror.tls.ca_file == "/etc/ca.pem"
    private = hosts.push_endpoint("private.example")
    assert private.tls.insecure_skip_verify and private.auth is not None
    assert (private.auth.username, private.auth.password) == ("u", "p")
    assert hosts.push_endpoint("localhost:5000").base_url == "http://localhost:5000"  # pushes skip mirrors
    assert hosts.is_plain_http("10.1.2.3:5000") and not hosts.is_plain_http("11.0.0.1:5000")


@pytest.mark.parametrize(("pattern", "host", "plain"), [
    ("reg:5000", "reg:5000", True), ("reg:5000", "reg:5001", False), ("reg", "reg:9999", True),
    ("reg:*", "reg:1", True), ("198.19.0.0/16", "198.19.128.1:5000", True), ("198.19.0.0/16", "reg", False),
])
def test_insecure_patterns(pattern: str, host: str, plain: bool) -> None:
    assert RegistryHosts(insecure=(pattern,)).is_plain_http(host) is plain


def test_flags_add_to_the_file(tmp_path: Path) -> None:
    path = tmp_path / "registries.yaml"
    path.write_text(CONFIG)
    hosts = RegistryHosts.load(path).with_flags(insecure=["reg.lan:5000"],
                                                mirrors=["localhost:5000=http://198.19.128.2:5000/"])
    assert urls(hosts, "localhost:5000/a") == ["http://198.19.128.1:5000/v2/a", "http://198.19.128.2:5000/v2/a",
                                               "http://localhost:5000/v2/a"]
    assert urls(hosts, "reg.lan:5000/a")[-1] == "http://reg.lan:5000/v2/a"
    assert RegistryHosts.load(tmp_path / "absent.yaml") == RegistryHosts()


@pytest.mark.parametrize(("text", "message"), [
    ("mirrors: [a]", "expected a mapping"),
    ("mirrors: {a: {endpoint: ['ftp://x']}}", "not an http"),
    ("mirrors: {a: {endpoint: ['http://x'], rewrite: {'(': 'y'}}}", "rewrite"),
    ("insecure: reg", "must be a list"),
    ("insecure: ['http://reg']", "without a scheme"),
    ("insecure: ['300.1.1.1/8']", "CIDR"),
    ("configs: {a: {auth: {auth: '!!'}}}", "base64"),
    ("mirror: {}", "unknown keys"),
    ("mirrors: {a: [", "not valid YAML"),
])
def test_bad_config_names_the_problem(text: str, message: str) -> None:
    with pytest.raises(RegistryConfigError, match=message):
        RegistryHosts.from_yaml(text)


@pytest.mark.parametrize(("flag", "message"), [("localhost:5000", "NAME=URL"), ("a=/x", "not an http")])
def test_bad_flags(flag: str, message: str) -> None:
    with pytest.raises(RegistryConfigError, match=message):
        RegistryHosts().with_flags(mirrors=[flag])


def test_missing_explicit_file(tmp_path: Path) -> None:
    with pytest.raises(RegistryConfigError, match="no such file"):
        RegistryHosts.load(tmp_path / "nope.yaml", missing_ok=False)
