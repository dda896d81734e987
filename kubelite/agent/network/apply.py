"""Making one network namespace's kernel state match a plan (thin I/O over iproute2).

Reads go through `ip -j` (JSON), writes through `ip -force -batch -` / `bridge -force -batch -`:
one process for any number of changes, the cheapest way measured (runtime-recipes §1), and
`-force` so one failing line does not stop the others (the error is still raised afterwards).
Every route we write carries `proto 211` (`Kernel.proto`): listing `ip route show proto 211`
finds exactly ours, so stale ones are deleted without touching anyone else's, and `cleanup`
removes them all, plus the vxlan device (which takes its neighbours and fdb entries with it).
`netns`: run inside that named network namespace (`ip -n NS`), as tests and nodes-as-namespaces do.
Applying is idempotent: each call lists, compares (the pure functions in routes.py / vxlan.py) and
writes only the difference; an empty difference runs no writer at all.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass
from ipaddress import IPv4Interface
from typing import Any

import orjson

from kubelite.agent.network.routes import (
    PROTO,
    Route,
    RouteChanges,
    parse_addresses,
    parse_routes,
    route_changes,
    route_lines,
)
from kubelite.agent.network.vxlan import (
    DeviceSpec,
    FdbEntry,
    Neighbour,
    device_lines,
    fdb_lines,
    neighbour_lines,
    parse_device,
    parse_fdb,
    parse_neighbours,
)

Obj = dict[str, Any]


class NetworkError(RuntimeError):
    pass


@dataclass(frozen=True)
class VxlanChanges:
    device: tuple[str, ...] = ()  # the `ip` lines that (re)made the device
    neighbours: tuple[str, ...] = ()
    fdb: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.device or self.neighbours or self.fdb)


class Kernel:
    """Our routes (and vxlan device) in one network namespace."""

    def __init__(self, *, netns: str | None = None, proto: int = PROTO, device: str = "kubelite.1") -> None:
        self.netns, self.proto, self.device = netns, proto, device
        self._ns = ["-n", netns] if netns else []

    # ----- running iproute2 ------------------------------------------------------------------------

    async def _run(self, tool: str, *args: str, input: str | None = None) -> tuple[int, str, str]:
        try:
            proc = await asyncio.create_subprocess_exec(
                tool, *self._ns, *args, stdin=asyncio.subprocess.PIPE if input is not None else None,
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        except FileNotFoundError as exc:
            raise NetworkError(f"{tool} not found: apt-get install iproute2") from exc
        out, err = await proc.communicate(input.encode() if input is not None else None)
        return proc.returncode or 0, out.decode(errors="replace"), err.decode(errors="replace").strip()

    async def json(self, tool: str, *args: str, missing_ok: bool = False) -> list[Obj]:
        code, out, err = await self._run(tool, "-j", *args)
        if code != 0:
            if missing_ok and "does not exist" in err:
                return []
            raise NetworkError(f"{tool} {' '.join(args)}{self._where()}: {err or f'exit {code}'}")
        rows = orjson.loads(out) if out.strip() else []
        return rows if isinstance(rows, list) else []

    async def batch(self, tool: str, lines: list[str]) -> None:
        if not lines:
            return
        code, _, err = await self._run(tool, "-force", "-batch", "-", input="\n".join(lines) + "\n")
        if code != 0:
            raise NetworkError(f"{tool} -batch{self._where()} failed: {err or f'exit {code}'}")

    def _where(self) -> str:
        return f" (netns {self.netns})" if self.netns else ""

    # ----- reads ----------------------------------------------------------------------------------

    async def local_addresses(self) -> tuple[IPv4Interface, ...]:
        return parse_addresses(await self.json("ip", "-4", "addr", "show"))

    async def routes(self) -> dict[str, Route]:
        return parse_routes(await self.json("ip", "-4", "route", "show", "proto", str(self.proto)))

    async def device_exists(self) -> bool:
        return bool(await self.json("ip", "link", "show", "dev", self.device, missing_ok=True))

    # ----- writes ---------------------------------------------------------------------------------

    async def apply_routes(self, desired: Iterable[Route]) -> RouteChanges:
        """Make our routes exactly `desired`; return what had to change."""
        changes = route_changes(await self.routes(), desired)
        await self.batch("ip", route_lines(changes, proto=self.proto))
        return changes

    async def ensure_device(self, spec: DeviceSpec) -> tuple[str, ...]:
        """Create or fix the vxlan device; return the lines that changed it."""
        rows = await self.json("ip", "-d", "addr", "show", "dev", spec.name, missing_ok=True)
        lines = device_lines(parse_device(rows), spec, exists=bool(rows))
        await self.batch("ip", lines)
        return tuple(lines)

    async def apply_vxlan(self, spec: DeviceSpec, *, neighbours: Iterable[Neighbour],
                          fdb: Iterable[FdbEntry]) -> VxlanChanges:
        """The device first (routes through it need it), then its neighbours and fdb entries."""
        device = await self.ensure_device(spec)
        have_neigh = parse_neighbours(await self.json("ip", "neigh", "show", "dev", spec.name, "nud", "permanent"))
        have_fdb = parse_fdb(await self.json("bridge", "fdb", "show", "dev", spec.name))
        neigh_lines = neighbour_lines(have_neigh, neighbours, device=spec.name)
        fdb_changes = fdb_lines(have_fdb, fdb, device=spec.name)
        await self.batch("ip", neigh_lines)
        await self.batch("bridge", fdb_changes)
        return VxlanChanges(device=device, neighbours=tuple(neigh_lines), fdb=tuple(fdb_changes))

    async def delete_device(self) -> bool:
        if not await self.device_exists():
            return False
        await self.batch("ip", [f"link del {self.device}"])
        return True

    async def cleanup(self) -> RouteChanges:
        """Remove every route of ours and the vxlan device."""
        changes = await self.apply_routes(())
        await self.delete_device()
        return changes
