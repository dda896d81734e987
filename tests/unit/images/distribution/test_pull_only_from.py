"""`--pull-only-from`: an offline node's pulls reach the allowed hosts and nothing else."""

from __future__ import annotations

import asyncio

import pytest

from kubelite.images.distribution.client import RegistryClient
from kubelite.images.distribution.errors import RegistryUnreachable
from kubelite.images.distribution.registries import RegistryHosts

ALLOWED = "198.19.128.1:5000"


def offline_hosts() -> RegistryHosts:
    return RegistryHosts().with_flags(mirrors=[f"localhost:5000=http://{ALLOWED}"], only=[ALLOWED])


def test_only_the_allowed_endpoints_are_tried() -> None:
    hosts = offline_hosts()
    assert [e.base_url for e in hosts.pull_endpoints("localhost:5000")] == [f"http://{ALLOWED}"]
    assert hosts.pull_endpoints("docker.io") == []  # Docker Hub: nowhere to go
    assert [e.host for e in RegistryHosts().pull_endpoints("docker.io")] != []  # unrestricted by default


def test_a_registry_left_nowhere_to_go_fails_without_a_request() -> None:
    async def body() -> None:
        async with RegistryClient(hosts=offline_hosts()) as client:
            await client.fetch_manifest("docker.io", "library/busybox", "latest")

    with pytest.raises(RegistryUnreachable, match=f"this node pulls only from {ALLOWED}"):
        asyncio.run(body())
