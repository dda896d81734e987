"""The node's image store with the means to pull into it: what the kubelet's image manager
(`kubelite.agent.imagepull`) is given on a node that can reach registries.

`NodeImages` is an `ImageStoreAPI` (the runtime reads images through it as through the store)
plus `pull(reference, secrets=...)`. Each pull uses a fresh client with the pod's
imagePullSecrets first, then the node-wide credentials (`<data-dir>/config.json`, Docker's
config.json, `configs.<host>.auth` in registries.yaml), re-read on every pull so `kubelite image
login` needs no agent restart. Pulls of one node share the store, whose import is safe to run
beside other imports and the kubelet's reads.
"""

from __future__ import annotations

import builtins
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from kubelite.images.api import ImageRecord
from kubelite.images.distribution.client import RegistryClient
from kubelite.images.distribution.credentials import (
    DOCKER_CFG,
    DOCKER_CONFIG_JSON,
    Keyring,
    from_secret,
    node_keyring,
)
from kubelite.images.distribution.pull import PullResult, pull_image
from kubelite.images.distribution.registries import RegistryHosts, default_config_path
from kubelite.images.store import ImageStore

USER_AGENT = "kubelite-kubelet"


class NodeImages:
    def __init__(self, store: ImageStore, *, hosts: RegistryHosts | None = None, data_dir: Path | None = None) -> None:
        self.store = store
        self.hosts = hosts or RegistryHosts()
        self.data_dir = data_dir

    # ImageStoreAPI: the runtime's reads go straight to the store
    def get(self, reference: str) -> ImageRecord:
        return self.store.get(reference)

    def list(self) -> builtins.list[ImageRecord]:
        return self.store.list()

    async def pull(self, reference: str, *, secrets: Sequence[dict[str, Any]] = ()) -> PullResult:
        """Pull `reference` with these Secrets' credentials before the node's; raises
        DistributionError / DigestMismatch / ImageFormatError / CredentialError."""
        keyring = pod_keyring(secrets) + node_keyring(self.data_dir)
        async with RegistryClient(hosts=self.hosts, keyring=keyring, user_agent=USER_AGENT) as client:
            return await pull_image(client, self.store, reference)


def pod_keyring(secrets: Iterable[dict[str, Any]]) -> Keyring:
    """The docker-config Secrets' credentials in order; Secrets of other types are ignored, as
    upstream's kubelet ignores them."""
    keyring = Keyring()
    for secret in secrets:
        if secret.get("type") in (DOCKER_CONFIG_JSON, DOCKER_CFG):
            keyring = keyring + from_secret(secret)
    return keyring


def load_hosts(*, data_dir: Path | None, config_path: Path | None = None, insecure: Iterable[str] = (),
               mirrors: Iterable[str] = (), only: Iterable[str] = ()) -> RegistryHosts:
    """registries.yaml (the given path must exist; the default one may be absent) plus flags;
    raises RegistryConfigError."""
    if config_path is not None:
        hosts = RegistryHosts.load(config_path, missing_ok=False)
    elif data_dir is not None:
        hosts = RegistryHosts.load(default_config_path(data_dir))
    else:
        hosts = RegistryHosts()
    return hosts.with_flags(insecure=insecure, mirrors=mirrors, only=only)


def node_images(store: ImageStore, *, data_dir: Path, config_path: Path | None = None,
                insecure: Iterable[str] = (), mirrors: Iterable[str] = (), only: Iterable[str] = ()) -> NodeImages:
    hosts = load_hosts(data_dir=data_dir, config_path=config_path, insecure=insecure, mirrors=mirrors, only=only)
    return NodeImages(store, hosts=hosts, data_dir=data_dir)
