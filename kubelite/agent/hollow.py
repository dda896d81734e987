"""Hollow nodes: many kubelets with the fake runtime in one process, sharing one Client (kubemark's
hollow-node, but thousands per process instead of one).

    nodes = HollowNodes(client, count=1000, prefix="hollow-")
    await nodes.start()          # registered, Ready, heartbeating, running pods bound to them
    await nodes.stop_node("hollow-7")   # that node's kubelet dies: heartbeats stop
    await nodes.stop()

Node `i` is named `<prefix><first_index + i>` and has the `i`th fake address of the node range
(198.19.128.16 onwards by default). Everything a real kubelet does against the API happens
(registration, leases, status, pod status, graceful deletion); only the containers are hollow.
"""

from __future__ import annotations

from typing import Any

from kubelite.agent.config import DEFAULT_NODE_IP_RANGE, KubeletConfig, NodeConfig, node_ip
from kubelite.agent.host import KubeletHost
from kubelite.agent.kubelet import AgentClients, Kubelet
from kubelite.agent.runtime.fake import FakeRuntime
from kubelite.client import Client


def hollow_node_configs(count: int, *, prefix: str = "hollow-", first_index: int = 0,
                        ip_range: str = DEFAULT_NODE_IP_RANGE, **overrides: Any) -> list[NodeConfig]:
    """The NodeConfigs of `count` hollow nodes; `overrides` set NodeConfig fields (cpu, memory...)."""
    return [NodeConfig(name=f"{prefix}{first_index + i}", internal_ip=node_ip(first_index + i, ip_range),
                       **overrides) for i in range(count)]


class HollowNodes:
    def __init__(self, client: Client, count: int, *, prefix: str = "hollow-", first_index: int = 0,
                 ip_range: str = DEFAULT_NODE_IP_RANGE, config: KubeletConfig | None = None,
                 **node_overrides: Any) -> None:
        self.client = client
        self.config = config or KubeletConfig()
        self.node_configs = hollow_node_configs(count, prefix=prefix, first_index=first_index, ip_range=ip_range,
                                                **node_overrides)
        self.clients = AgentClients.alongside(client)
        kubelets = [Kubelet(self.clients, cfg, FakeRuntime(cfg.name), config=self.config) for cfg in self.node_configs]
        self.host = KubeletHost(client, kubelets, config=self.config)

    @property
    def names(self) -> list[str]:
        return [cfg.name for cfg in self.node_configs]

    @property
    def kubelets(self) -> dict[str, Kubelet]:
        return self.host.kubelets

    async def start(self) -> None:
        await self.host.start()

    async def stop_node(self, name: str) -> None:
        await self.host.stop_node(name)

    async def stop(self) -> None:
        await self.host.stop()
        await self.clients.close_extra()
