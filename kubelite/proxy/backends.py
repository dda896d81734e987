"""Proxy backends: what the Proxier hands its service ports to.

`Backend` is the contract (the nftables backend here, the userspace fallback in userspace.py).
`NftBackend` keeps one model fragment per Service, recomputing only the Services the Proxier
marks dirty, assembles the whole desired Ruleset (cheap: it reuses the fragments' chain tuples,
so comparing with the applied one mostly compares identical objects), and applies the
difference in one `nft -f` transaction. The first sync, a changed node context, and any failed
update replace the whole table instead, so a table edited behind our back heals on the next
change. `cleanup` deletes the table.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Protocol

from kubelite.proxy.model import NodeContext, Ruleset, assemble, service_fragment
from kubelite.proxy.nft import MASQ_MARK, TABLE, Nft, NftError, render_delete, render_full, render_update
from kubelite.proxy.serviceports import ServicePort

log = logging.getLogger(__name__)

PortsByService = Mapping[str, list[ServicePort]]


class Backend(Protocol):
    name: str

    async def available(self) -> str | None:
        """None when usable here, else why not."""

    async def sync(self, ports: PortsByService, *, ctx: NodeContext, dirty: Iterable[str] | None) -> None:
        """Make the data path match `ports` (every proxied Service, keyed ns/name); `dirty` names
        the Services that changed since the last sync (None: all)."""

    async def cleanup(self) -> None:
        """Remove everything this backend installed."""


@dataclass
class ApplyStats:
    mode: str = ""  # "full", "incremental" or "noop"
    nft_seconds: float = 0.0  # the nft process alone
    total_seconds: float = 0.0  # model + render + nft
    script_bytes: int = 0
    full_applies: int = 0
    incremental_applies: int = 0


class NftBackend:
    name = "nftables"

    def __init__(self, *, table: str = TABLE, netns: str | None = None, mark: int = MASQ_MARK) -> None:
        self.table, self.mark = table, mark
        self.nft = Nft(netns=netns)
        self.stats = ApplyStats()
        self._fragments: dict[str, Ruleset] = {}
        self._ctx: NodeContext | None = None
        self._applied: Ruleset | None = None

    async def available(self) -> str | None:
        return await self.nft.probe()

    async def sync(self, ports: PortsByService, *, ctx: NodeContext, dirty: Iterable[str] | None) -> None:
        started = time.perf_counter()
        full = ctx != self._ctx
        if full:
            self._fragments.clear()
        keys = ports.keys() if full or dirty is None else dirty
        for key in keys:
            if key in ports:
                self._fragments[key] = service_fragment(ports[key], ctx)
            else:
                self._fragments.pop(key, None)
        for key in [k for k in self._fragments if k not in ports]:
            del self._fragments[key]
        await self.apply(assemble(self._fragments.values(), ctx), ctx=ctx, full=full)
        self.stats.total_seconds = time.perf_counter() - started

    async def apply(self, desired: Ruleset, *, ctx: NodeContext, full: bool = False) -> None:
        """Make the table hold `desired`: the difference from what was applied, else all of it."""
        if not full and self._applied is not None:
            script = render_update(self._applied, desired, table=self.table)
            if not script:
                self.stats.mode, self.stats.nft_seconds, self.stats.script_bytes = "noop", 0.0, 0
                self._applied = desired
                return
            try:
                await self._run(script, "incremental")
                self._applied = desired
                return
            except NftError as exc:
                log.warning("proxy: incremental nftables update failed (%s); replacing the table", exc)
        self._applied = None
        await self._run(render_full(desired, table=self.table, mark=self.mark, service_cidr=ctx.service_cidr), "full")
        self._applied, self._ctx = desired, ctx

    async def _run(self, script: str, mode: str) -> None:
        self.stats.nft_seconds = await self.nft.run(script)
        self.stats.mode, self.stats.script_bytes = mode, len(script)
        if mode == "full":
            self.stats.full_applies += 1
        else:
            self.stats.incremental_applies += 1

    async def cleanup(self) -> None:
        self._applied, self._ctx = None, None
        self._fragments.clear()
        try:
            await self.nft.run(render_delete(table=self.table))
        except (NftError, FileNotFoundError) as exc:
            log.warning("proxy: could not delete nftables table %s: %s", self.table, exc)
