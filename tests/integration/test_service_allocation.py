"""ClusterIPs and NodePorts are unique and run out cleanly: allocation probes at random, then falls
back to a pass over what is free, so the last free value is found and a full range is an error."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from kubelite.client import Client, Connection
from kubelite.client.resources import SERVICES
from kubelite.objects.errors import InternalError, StatusError
from tests.integration.conftest import ServerThread


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerThread]:
    # /27: 30 hosts, the upper 15 for dynamic ClusterIPs (the lower half holds kubernetes and DNS)
    srv = ServerThread(Path(tmp_path_factory.mktemp("alloc")), service_cidr="198.19.250.64/27",
                       node_port_range=(30000, 30019)).start()
    yield srv
    srv.stop()


def service(name: str, kind: str = "ClusterIP") -> dict:
    return {"metadata": {"name": name}, "spec": {"type": kind, "ports": [{"port": 80}], "selector": {"a": "b"}}}


async def create_all(srv: ServerThread, names: list[str], kind: str) -> tuple[list[dict], list[StatusError]]:
    assert srv.runtime.socket_path is not None
    client = Client(Connection.unix(srv.runtime.socket_path))
    made, errors = [], []
    try:
        for name in names:
            try:
                made.append(await client.create(SERVICES, service(name, kind), namespace="default"))
            except StatusError as exc:
                errors.append(exc)
    finally:
        await client.close()
    return made, errors


def test_every_dynamic_cluster_ip_once_then_range_full(small: ServerThread) -> None:
    made, errors = asyncio.run(create_all(small, [f"ip-{i}" for i in range(17)], "ClusterIP"))
    ips = [s["spec"]["clusterIP"] for s in made]
    assert len(ips) == len(set(ips)) == 15
    assert all(int(ip.rsplit(".", 1)[1]) > 64 + 15 for ip in ips)  # the dynamic (upper) band only
    assert len(errors) == 2 and all(isinstance(e, InternalError) for e in errors)
    assert "the range 198.19.250.64/27 is full" in str(errors[0])


def test_every_node_port_once_then_range_full(small: ServerThread) -> None:
    asyncio.run(_delete_all(small))
    made, errors = asyncio.run(create_all(small, [f"np-{i}" for i in range(15)], "NodePort"))
    ports = [s["spec"]["ports"][0]["nodePort"] for s in made]
    assert len(made) == 15 and len(set(ports)) == 15 and all(30000 <= p <= 30019 for p in ports)
    assert errors == []


async def _delete_all(srv: ServerThread) -> None:
    assert srv.runtime.socket_path is not None
    client = Client(Connection.unix(srv.runtime.socket_path))
    try:
        for item in (await client.list(SERVICES, "default"))["items"]:
            if item["metadata"]["name"] != "kubernetes":
                await client.delete(SERVICES, item["metadata"]["name"], "default")
    finally:
        await client.close()
