"""Unit tests for kubelite.cluster.kubeconfig: building, atomic 0600 writes, minikube-style merging."""

from __future__ import annotations

import base64
import stat
from pathlib import Path
from typing import Any

import pytest
import yaml

from kubelite.cluster.kubeconfig import build_kubeconfig, merge_into, write_kubeconfig

CA = b"-----BEGIN CERTIFICATE-----\nCA\n-----END CERTIFICATE-----\n"


def _named(config: dict[str, Any], section: str) -> dict[str, dict[str, Any]]:
    return {e["name"]: e for e in config[section]}


def test_build_with_client_cert() -> None:
    cfg = build_kubeconfig(server="https://127.0.0.1:6443", ca_pem=CA, client_cert_pem=b"C",
                           client_key_pem=b"K", namespace="dev")
    cluster = cfg["clusters"][0]["cluster"]
    assert cluster["server"] == "https://127.0.0.1:6443"
    assert base64.b64decode(cluster["certificate-authority-data"]) == CA
    user = cfg["users"][0]["user"]
    assert base64.b64decode(user["client-certificate-data"]) == b"C"
    assert base64.b64decode(user["client-key-data"]) == b"K"
    assert "token" not in user
    assert cfg["contexts"][0] == {"name": "kubelite", "context": {"cluster": "kubelite",
                                                                  "user": "kubelite-admin", "namespace": "dev"}}
    assert cfg["current-context"] == "kubelite"


def test_build_with_token() -> None:
    cfg = build_kubeconfig(server="https://h:1", ca_pem=CA, token="abc", user="u", cluster="c", context="x")
    assert cfg["users"] == [{"name": "u", "user": {"token": "abc"}}]
    assert cfg["contexts"][0]["context"] == {"cluster": "c", "user": "u"}


def test_build_requires_cert_and_key_together() -> None:
    with pytest.raises(ValueError):
        build_kubeconfig(server="https://h:1", ca_pem=CA, client_cert_pem=b"C")


def test_write_is_0600_and_yaml(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "config"
    cfg = build_kubeconfig(server="https://h:1", ca_pem=CA, token="t")
    write_kubeconfig(path, cfg)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert yaml.safe_load(path.read_text()) == cfg
    assert [p.name for p in path.parent.iterdir()] == ["config"]


def test_merge_creates_missing_file(tmp_path: Path) -> None:
    path = tmp_path / ".kube" / "config"
    cfg = build_kubeconfig(server="https://h:1", ca_pem=CA, token="t")
    merge_into(path, cfg)
    assert yaml.safe_load(path.read_text())["current-context"] == "kubelite"


def test_merge_replaces_same_names_and_keeps_others(tmp_path: Path) -> None:
    path = tmp_path / "config"
    other = build_kubeconfig(server="https://other:443", ca_pem=b"O", token="o", cluster="prod",
                             user="prod-admin", context="prod")
    other["preferences"] = {"colors": True}
    write_kubeconfig(path, other)
    merge_into(path, build_kubeconfig(server="https://old:1", ca_pem=CA, token="old"))
    merge_into(path, build_kubeconfig(server="https://new:2", ca_pem=CA, token="new"))
    merged = yaml.safe_load(path.read_text())
    assert set(_named(merged, "clusters")) == {"prod", "kubelite"}
    assert _named(merged, "clusters")["prod"]["cluster"]["server"] == "https://other:443"
    assert _named(merged, "clusters")["kubelite"]["cluster"]["server"] == "https://new:2"
    assert _named(merged, "users")["kubelite-admin"]["user"] == {"token": "new"}
    assert _named(merged, "users")["prod-admin"]["user"] == {"token": "o"}
    assert set(_named(merged, "contexts")) == {"prod", "kubelite"}
    assert merged["current-context"] == "kubelite"
    assert merged["preferences"] == {"colors": True}
    assert [e["name"] for e in merged["clusters"]] == ["prod", "kubelite"]


def test_merge_without_make_current(tmp_path: Path) -> None:
    path = tmp_path / "config"
    write_kubeconfig(path, build_kubeconfig(server="https://o:1", ca_pem=CA, token="o", context="prod"))
    merge_into(path, build_kubeconfig(server="https://n:2", ca_pem=CA, token="n"), make_current=False)
    assert yaml.safe_load(path.read_text())["current-context"] == "prod"


def test_merge_into_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "config"
    path.write_text("")
    merge_into(path, build_kubeconfig(server="https://n:2", ca_pem=CA, token="n"))
    assert len(yaml.safe_load(path.read_text())["clusters"]) == 1


def test_merge_follows_symlink(tmp_path: Path) -> None:
    real = tmp_path / "real-config"
    link = tmp_path / "config"
    write_kubeconfig(real, build_kubeconfig(server="https://o:1", ca_pem=CA, token="o", context="prod",
                                            cluster="prod", user="prod"))
    link.symlink_to(real)
    merge_into(link, build_kubeconfig(server="https://n:2", ca_pem=CA, token="n"))
    assert link.is_symlink()
    assert len(yaml.safe_load(real.read_text())["clusters"]) == 2
