"""Images over the OCI distribution protocol: pull into and push from the node's store.

    from kubelite.images.distribution import pull, push, RegistryHosts
    result = await pull(store, "localhost:5000/hello:1.0")          # PullResult(name, digest, record, ...)
    result = await push(store, "localhost:5000/hello:1.0")          # PushResult(tag, digest, size, ...)

Modules: `registries` (where a registry name's requests go: plain HTTP, mirrors, rewrites;
registries.yaml), `credentials` (config.json, dockerconfigjson Secrets, the keyring), `auth`
(WWW-Authenticate challenges, bearer tokens), `client` (`RegistryClient`: requests with auth,
verified manifest fetches), `pull` / `push` (the image operations), `pipe` (streaming a body
into the store's ingest off the event loop), `progress` (Docker-style output), `node` (the
kubelet's pulling store). A `RegistryClient` can serve several operations (tokens are reused);
these helpers make one per call.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from kubelite.images.distribution.client import RegistryClient
from kubelite.images.distribution.credentials import Credential, Keyring
from kubelite.images.distribution.errors import (
    AuthError,
    DistributionError,
    NotFound,
    RegistryError,
    RegistryUnreachable,
    TransferBroken,
)
from kubelite.images.distribution.progress import Progress
from kubelite.images.distribution.pull import PullResult, pull_image
from kubelite.images.distribution.push import PushResult, push_image
from kubelite.images.distribution.registries import RegistryConfigError, RegistryHosts

if TYPE_CHECKING:
    from kubelite.images.store import ImageStore


async def pull(store: ImageStore, reference: str, *, hosts: RegistryHosts | None = None,
               keyring: Keyring | None = None, platform: dict[str, str] | None = None,
               progress: Progress | None = None) -> PullResult:
    async with RegistryClient(hosts=hosts, keyring=keyring) as client:
        return await pull_image(client, store, reference, platform=platform, progress=progress)


async def push(store: ImageStore, reference: str, *, hosts: RegistryHosts | None = None,
               keyring: Keyring | None = None, progress: Progress | None = None) -> PushResult:
    async with RegistryClient(hosts=hosts, keyring=keyring) as client:
        return await push_image(client, store, reference, progress=progress)


__all__ = ["AuthError", "Credential", "DistributionError", "Keyring", "NotFound", "PullResult", "PushResult",
           "RegistryClient", "RegistryConfigError", "RegistryError", "RegistryHosts", "RegistryUnreachable",
           "TransferBroken", "pull", "push"]
