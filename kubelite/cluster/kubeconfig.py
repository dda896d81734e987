"""Kubeconfig files: build one with embedded credentials, write it safely, merge it into another.

`build_kubeconfig` returns the plain dict kubectl reads (`apiVersion: v1`, `kind: Config`), with the
CA and any client certificate embedded as base64 `*-data` fields so the file is self-contained.
`merge_into` behaves like minikube/kind: clusters, users and contexts with the same names are
replaced, everything else in the target file (other entries, preferences, extensions) is kept.
All writes go through a temp file in the same directory and an atomic rename, mode 0600.
"""

from __future__ import annotations

import base64
import os
from pathlib import Path
from typing import Any

import yaml

from kubelite.lib.files import atomic_write

SECTIONS: tuple[str, ...] = ("clusters", "users", "contexts")


def build_kubeconfig(*, server: str, ca_pem: bytes, cluster: str = "kubelite", user: str = "kubelite-admin",
                     context: str = "kubelite", client_cert_pem: bytes | None = None,
                     client_key_pem: bytes | None = None, token: str | None = None,
                     namespace: str | None = None) -> dict[str, Any]:
    """A single-cluster kubeconfig authenticating with a client cert+key, a bearer token, or both."""
    if (client_cert_pem is None) != (client_key_pem is None):
        raise ValueError("client_cert_pem and client_key_pem must be given together")
    context_body: dict[str, Any] = {"cluster": cluster, "user": user}
    if namespace:
        context_body["namespace"] = namespace
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "preferences": {},
        "clusters": [{"name": cluster, "cluster": {"server": server,
                                                   "certificate-authority-data": _b64(ca_pem)}}],
        "users": [{"name": user, "user": _user_body(client_cert_pem, client_key_pem, token)}],
        "contexts": [{"name": context, "context": context_body}],
        "current-context": context,
    }


def write_kubeconfig(path: Path, config: dict[str, Any]) -> None:
    """Write `config` as YAML to `path` (mode 0600) atomically; a symlinked path writes its target."""
    target = Path(os.path.realpath(path))
    target.parent.mkdir(parents=True, exist_ok=True)
    text = yaml.safe_dump(config, default_flow_style=False, sort_keys=False)
    atomic_write(target, text.encode(), 0o600)


def merge_into(path: Path, config: dict[str, Any], *, make_current: bool = True) -> None:
    """Merge `config`'s clusters/users/contexts into the kubeconfig at `path` (created if missing)."""
    merged = merge_configs(load_kubeconfig(path), config, make_current=make_current)
    write_kubeconfig(path, merged)


def remove_context(path: Path, name: str) -> None:
    """Drop context `name` and the cluster and user it names (as `minikube delete` does); the
    current context is unset when it was that one."""
    config = load_kubeconfig(path)
    context = next((c for c in config.get("contexts") or [] if c.get("name") == name), None)
    if context is None:
        return
    body = context.get("context") or {}
    config["contexts"] = [c for c in config.get("contexts") or [] if c.get("name") != name]
    config["clusters"] = [c for c in config.get("clusters") or [] if c.get("name") != body.get("cluster")]
    config["users"] = [u for u in config.get("users") or [] if u.get("name") != body.get("user")]
    if config.get("current-context") == name:
        config["current-context"] = ""
    write_kubeconfig(path, config)


def load_kubeconfig(path: Path) -> dict[str, Any]:
    """The kubeconfig at `path`, or an empty skeleton if the file is missing or empty."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        text = ""
    loaded = yaml.safe_load(text) if text.strip() else None
    if loaded is None:
        return _empty_config()
    if not isinstance(loaded, dict):
        raise ValueError(f"{path}: not a kubeconfig (top level is {type(loaded).__name__})")
    return loaded


def merge_configs(base: dict[str, Any], extra: dict[str, Any], *, make_current: bool = True) -> dict[str, Any]:
    """A copy of `base` with `extra`'s named entries replacing or appended to its own."""
    merged = {**_empty_config(), **base}
    for section in SECTIONS:
        merged[section] = _merge_named(base.get(section) or [], extra.get(section) or [])
    if make_current and extra.get("current-context"):
        merged["current-context"] = extra["current-context"]
    return merged


def _merge_named(existing: list[dict[str, Any]], incoming: list[dict[str, Any]]) -> list[dict[str, Any]]:
    replacements = {entry["name"]: entry for entry in incoming}
    result = [replacements.pop(entry.get("name"), entry) for entry in existing]
    return result + [entry for entry in incoming if entry["name"] in replacements]


def _user_body(cert_pem: bytes | None, key_pem: bytes | None, token: str | None) -> dict[str, str]:
    body: dict[str, str] = {}
    if cert_pem is not None and key_pem is not None:
        body["client-certificate-data"] = _b64(cert_pem)
        body["client-key-data"] = _b64(key_pem)
    if token is not None:
        body["token"] = token
    return body


def _empty_config() -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Config", "preferences": {}, "clusters": [], "users": [],
            "contexts": [], "current-context": ""}


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")
