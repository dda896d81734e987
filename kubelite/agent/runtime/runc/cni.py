"""Pod networking with the real CNI plugins (Debian's containernetworking-plugins), run as the CNI
spec says: one process per plugin, the network configuration on stdin, CNI_* in the environment,
the result (or an error object) as JSON on stdout.

The network is a conflist generated from the node's podCIDR: `bridge` (a host bridge, `isGateway`
so the bridge holds the subnet's first address and routes for the pods, `hairpinMode` so a pod can
reach itself through a Service, `ipMasq` off by default) with `host-local` IPAM whose dataDir lives
under the runtime root, then `portmap` for hostPorts (a no-op without mappings). The `loopback`
plugin brings up `lo`, concurrently with the chain (it touches only `lo`). ADD runs the chain in order, each plugin given the previous result; DEL runs
it in reverse with the ADD result, which the caller persists along with the exact conflist used,
so DEL and CHECK work after an agent restart or a podCIDR change. DEL is idempotent in every plugin
(it releases the address even when the namespace is already gone), so teardown always calls it.
"""

from __future__ import annotations

import asyncio
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kubelite.agent.runtime.runc import system

Obj = dict[str, Any]
CNI_VERSION = "1.0.0"
PLUGINS = ("bridge", "host-local", "loopback", "portmap")
LOOPBACK: Obj = {"cniVersion": CNI_VERSION, "name": "lo", "type": "loopback"}


class CniError(Exception):
    pass


@dataclass(frozen=True)
class CniSettings:
    network: str = "kubelite"
    bridge: str = "cni0"
    bin_dir: Path = Path("/usr/lib/cni")
    ip_masq: bool = False
    mtu: int | None = None

    def missing_plugins(self) -> list[str]:
        return [p for p in PLUGINS if not os.access(self.bin_dir / p, os.X_OK)]


def conflist(settings: CniSettings, *, subnet: str, data_dir: Path) -> Obj:
    bridge: Obj = {"type": "bridge", "bridge": settings.bridge, "isGateway": True, "ipMasq": settings.ip_masq,
                   "hairpinMode": True,
                   "ipam": {"type": "host-local", "ranges": [[{"subnet": subnet}]],
                            "routes": [{"dst": "0.0.0.0/0"}], "dataDir": str(data_dir)}}
    if settings.mtu:
        bridge["mtu"] = settings.mtu
    portmap = {"type": "portmap", "capabilities": {"portMappings": True}, "snat": True}
    return {"cniVersion": CNI_VERSION, "name": settings.network, "plugins": [bridge, portmap]}


def port_mappings(pod: Obj) -> list[Obj]:
    """The runtimeConfig.portMappings of a pod: its containers' ports that ask for a hostPort."""
    mappings = []
    for container in (pod.get("spec") or {}).get("containers") or []:
        for port in container.get("ports") or []:
            if int(port.get("hostPort") or 0) > 0:
                mapping = {"hostPort": int(port["hostPort"]), "containerPort": int(port["containerPort"]),
                           "protocol": str(port.get("protocol") or "TCP").lower()}
                if port.get("hostIP"):
                    mapping["hostIP"] = str(port["hostIP"])
                mappings.append(mapping)
    return mappings


def plugin_config(net: Obj, plugin: Obj, *, prev_result: Obj | None, runtime_config: Obj) -> Obj:
    conf = {"cniVersion": net["cniVersion"], "name": net["name"], **plugin}
    wanted = plugin.get("capabilities") or {}
    given = {k: v for k, v in runtime_config.items() if wanted.get(k)}
    if given:
        conf["runtimeConfig"] = given
    if prev_result is not None:
        conf["prevResult"] = prev_result
    return conf


def result_ips(result: Obj | None) -> list[str]:
    return [str(ip["address"]).split("/", 1)[0] for ip in (result or {}).get("ips") or [] if ip.get("address")]


class CniRunner:
    def __init__(self, settings: CniSettings) -> None:
        self.settings = settings

    async def _exec(self, command: str, conf: Obj, *, container_id: str, netns: str, ifname: str) -> Obj | None:
        env = {**os.environ, "CNI_COMMAND": command, "CNI_CONTAINERID": container_id, "CNI_NETNS": netns,
               "CNI_IFNAME": ifname, "CNI_PATH": str(self.settings.bin_dir)}
        binary = self.settings.bin_dir / str(conf["type"])
        result = await system.run([str(binary)], stdin=json.dumps(conf).encode(), env=env)
        if result.rc != 0:
            raise CniError(f"plugin type=\"{conf['type']}\" failed ({command}): {_error_message(result)}")
        text = result.stdout.strip()
        return json.loads(text) if text else None

    async def add(self, net: Obj, *, container_id: str, netns: str, runtime_config: Obj) -> Obj:
        """The chain's ADD (its final result); the loopback network is set up alongside."""
        loopback = asyncio.ensure_future(self._exec("ADD", LOOPBACK, container_id=container_id, netns=netns,
                                                    ifname="lo"))
        prev: Obj | None = None
        try:
            for plugin in net["plugins"]:
                conf = plugin_config(net, plugin, prev_result=prev, runtime_config=runtime_config)
                prev = await self._exec("ADD", conf, container_id=container_id, netns=netns, ifname="eth0") or prev
        finally:
            await asyncio.wait({loopback})
        loopback.result()
        if prev is None:
            raise CniError("the network returned no result")
        return prev

    async def delete(self, net: Obj, *, container_id: str, netns: str, runtime_config: Obj,
                     prev_result: Obj | None) -> None:
        """Every plugin's DEL, in reverse; all run even if one fails, then the first error is raised."""
        errors: list[str] = []
        for plugin in reversed(net["plugins"]):
            conf = plugin_config(net, plugin, prev_result=prev_result, runtime_config=runtime_config)
            try:
                await self._exec("DEL", conf, container_id=container_id, netns=netns, ifname="eth0")
            except CniError as exc:
                errors.append(str(exc))
        if errors:
            raise CniError("; ".join(errors))

    async def check(self, net: Obj, *, container_id: str, netns: str, runtime_config: Obj,
                    prev_result: Obj) -> None:
        for plugin in net["plugins"]:
            conf = plugin_config(net, plugin, prev_result=prev_result, runtime_config=runtime_config)
            await self._exec("CHECK", conf, container_id=container_id, netns=netns, ifname="eth0")


def _error_message(result: system.Result) -> str:
    try:
        err = json.loads(result.stdout)
        msg = str(err.get("msg") or "")
        return f"{msg}: {err['details']}" if err.get("details") else msg or result.error()
    except (ValueError, AttributeError):
        return result.error()
