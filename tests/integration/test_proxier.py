"""The Proxier against a real API server, with a backend that records what it is handed: which
Services it sees, which ones each sync marks dirty, that heartbeats of its Node cost nothing and a
change of its address re-syncs everything; and the automatic fallback to the userspace proxy."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import pytest

from kubelite.client import Client, Connection
from kubelite.client.resources import ENDPOINTSLICES, NODES, SERVICES
from kubelite.proxy.backends import PortsByService
from kubelite.proxy.model import NodeContext
from kubelite.proxy.nft import Nft
from kubelite.proxy.proxier import Proxier
from kubelite.proxy.userspace import UserspaceBackend
from tests.integration.conftest import ServerThread

Obj = dict[str, Any]


class Recorder:
    name = "recorder"

    def __init__(self) -> None:
        self.syncs: list[tuple[dict[str, list[Any]], set[str] | None, NodeContext]] = []
        self.cleaned = False

    async def available(self) -> str | None:
        return None

    async def sync(self, ports: PortsByService, *, ctx: NodeContext, dirty: Iterable[str] | None) -> None:
        self.syncs.append(({k: list(v) for k, v in ports.items()}, None if dirty is None else set(dirty), ctx))

    async def cleanup(self) -> None:
        self.cleaned = True


class Env:
    def __init__(self, srv: ServerThread) -> None:
        self.srv = srv
        self.client = Client(Connection.unix(str(srv.runtime.socket_path)))

    def api(self, method: str, *args: Any, **kwargs: Any) -> Any:
        return self.srv.call(getattr(self.client, method)(*args, **kwargs))


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    srv = ServerThread(tmp_path_factory.mktemp("proxier")).start()
    e = Env(srv)
    try:
        e.api("create", NODES, {"metadata": {"name": "px-node"}, "spec": {"podCIDR": "198.18.7.0/24"}})
        yield e
    finally:
        srv.call(e.client.close())
        srv.stop()


def wait_for(check: Callable[[], Any], what: str, timeout: float = 10) -> Any:
    deadline = time.monotonic() + timeout
    while not (result := check()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)
    return result


def service(name: str) -> Obj:
    return {"metadata": {"name": name, "namespace": "default"},
            "spec": {"selector": {"app": name}, "ports": [{"name": "http", "port": 80, "targetPort": "web"}]}}


def endpoint_slice(name: str, service_name: str, ips: list[str]) -> Obj:
    return {"metadata": {"name": name, "namespace": "default", "labels": {"kubernetes.io/service-name": service_name}},
            "addressType": "IPv4", "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
            "endpoints": [{"addresses": [ip], "conditions": {"ready": True}, "nodeName": "px-node"} for ip in ips]}


def test_syncs_follow_services_slices_and_the_node(env: Env) -> None:
    recorder = Recorder()
    proxier = Proxier(env.client, node_name="px-node", node_ips=["198.19.128.7"], backend=recorder,
                      min_sync_interval=0.01)
    env.srv.call(_start(proxier))
    try:
        first_ports, first_dirty, ctx = recorder.syncs[0]
        assert first_dirty is None and "default/kubernetes" in first_ports
        assert ctx == NodeContext("px-node", node_ips=("198.19.128.7",), cluster_cidr="198.18.7.0/24")

        env.api("create", SERVICES, service("px-a"), "default")
        env.api("create", SERVICES, service("px-b"), "default")
        wait_for(lambda: {"default/px-a", "default/px-b"} <= recorder.syncs[-1][0].keys(), "both services")
        count = len(recorder.syncs)
        env.api("create", ENDPOINTSLICES, endpoint_slice("px-a-1", "px-a", ["198.18.7.2", "198.18.7.3"]), "default")
        ports, dirty, _ = wait_for(lambda: recorder.syncs[-1] if len(recorder.syncs) > count
                                   and recorder.syncs[-1][0]["default/px-a"][0].endpoints else None, "the slice")
        assert dirty == {"default/px-a"}  # only the service the slice belongs to
        assert [e.address for e in ports["default/px-a"][0].endpoints] == ["198.18.7.2:8080", "198.18.7.3:8080"]

        count = len(recorder.syncs)
        env.api("patch", NODES, "px-node", {"metadata": {"labels": {"heartbeat": "1"}}})
        time.sleep(0.3)
        assert len(recorder.syncs) == count  # the node changed, but nothing the proxy uses
        env.api("patch", NODES, "px-node", {"status": {"addresses": [{"type": "InternalIP", "address": "198.19.128.8"}]}},
                subresource="status")
        _, dirty, ctx = wait_for(lambda: recorder.syncs[-1] if len(recorder.syncs) > count else None, "node address")
        assert dirty is None and ctx.node_ips == ("198.19.128.7", "198.19.128.8")

        env.api("delete", SERVICES, "px-b", "default")
        ports, dirty, _ = wait_for(lambda: recorder.syncs[-1] if "default/px-b" not in recorder.syncs[-1][0] else None,
                                   "the deletion")
        assert dirty == {"default/px-b"}
    finally:
        env.srv.call(proxier.stop())
    assert recorder.cleaned


async def _start(proxier: Proxier) -> None:
    proxier.start()
    await asyncio.wait_for(proxier.synced.wait(), 10)


def test_falls_back_to_userspace_with_a_log_line(env: Env, monkeypatch: pytest.MonkeyPatch,
                                                 caplog: pytest.LogCaptureFixture) -> None:
    async def no_nft(self: Nft) -> str:
        return "nft not found"

    monkeypatch.setattr(Nft, "probe", no_nft)
    proxier = Proxier(env.client, node_name="px-node", min_sync_interval=0.01)
    with caplog.at_level(logging.WARNING, logger="kubelite.proxy.proxier"):
        env.srv.call(_start(proxier))
    try:
        assert isinstance(proxier.backend, UserspaceBackend)
        assert "nftables unavailable (nft not found); node px-node falls back to the userspace proxy" in caplog.text
    finally:
        env.srv.call(proxier.stop())


def test_nftables_required_but_unavailable_fails(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    async def no_nft(self: Nft) -> str:
        return "Operation not permitted"

    monkeypatch.setattr(Nft, "probe", no_nft)
    proxier = Proxier(env.client, node_name="px-node", backend="nftables")
    with pytest.raises(RuntimeError, match="nftables unavailable: Operation not permitted"):
        env.srv.call(proxier.run())
