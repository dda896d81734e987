"""Proxy backends: what the Proxier hands its service ports to.

`Backend` is the contract (the nftables backend here, the userspace fallback in userspace.py).
`NftBackend` recomputes the model fragments of the Services the Proxier marks dirty only, swaps
them into its `Desired` ruleset (desired.py), which hands back just the entries they touch before
and after, and applies that difference in one `nft -f` transaction in nft's cheap forms (nft.py):
one endpoint change at 5,000 Services costs a few milliseconds of Python and one short nft run.
Chains such an update leaves empty (a removed endpoint's) are deleted later, in the first update
that makes nft list the table's chains anyway (new or deleted Services, changed map entries), or
once STALE_CHAINS_MAX of them wait; they are unreferenced, so they change no packet's path.
The first sync, a changed node context, and any failed update replace the whole table instead,
so a table edited behind our back heals on the next change. `cleanup` deletes the table.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Protocol

from kubelite.proxy.desired import Desired
from kubelite.proxy.model import NodeContext, Ruleset, service_fragment
from kubelite.proxy.nft import (
    MASQ_MARK,
    TABLE,
    Nft,
    NftError,
    loads_chain_list,
    render_delete,
    render_full,
    render_purge,
    render_update,
)
from kubelite.proxy.serviceports import ServicePort

log = logging.getLogger(__name__)

PortsByService = Mapping[str, list[ServicePort]]
STALE_CHAINS_MAX = 500  # empty chains left for a later delete (each adds ~2 us to nft's listing)


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
    stale_chains: int = 0  # empty chains waiting for a later delete, after this sync


class NftBackend:
    name = "nftables"

    def __init__(self, *, table: str = TABLE, netns: str | None = None, mark: int = MASQ_MARK) -> None:
        self.table, self.mark = table, mark
        self.nft = Nft(netns=netns)
        self.stats = ApplyStats()
        self._desired: Desired | None = None
        self._in_sync = False  # the table holds _desired as it was before the last put
        self._stale: set[str] = set()

    async def available(self) -> str | None:
        return await self.nft.probe()

    async def sync(self, ports: PortsByService, *, ctx: NodeContext, dirty: Iterable[str] | None) -> None:
        started = time.perf_counter()
        if self._desired is None or ctx != self._desired.ctx:
            self._desired, self._in_sync = Desired(ctx), False
            self._desired.fill({k: service_fragment(v, ctx) for k, v in ports.items()})
            await self._apply(Ruleset(), Ruleset(), ctx=ctx)
        else:
            keys = set(ports) | set(self._desired.fragments) if dirty is None else set(dirty)
            keys.discard("")  # the node's own entries, never a Service
            gone = [k for k in self._desired.fragments if k and k not in ports and k not in keys]
            changes: dict[str, Ruleset | None] = {k: service_fragment(ports[k], ctx) if k in ports else None
                                                  for k in [*keys, *gone]}
            before, after = self._desired.put(changes)
            await self._apply(before, after, ctx=ctx)
        self.stats.total_seconds = time.perf_counter() - started
        self.stats.stale_chains = len(self._stale)

    async def _apply(self, before: Ruleset, after: Ruleset, *, ctx: NodeContext) -> None:
        """Apply the difference when the table is in step, else the whole desired ruleset."""
        assert self._desired is not None
        if self._in_sync:
            script = render_update(before, after, table=self.table, cheap=True)
            if not script:
                self.stats.mode, self.stats.nft_seconds, self.stats.script_bytes = "noop", 0.0, 0
                return
            stale = (self._stale - after.chains.keys()) | (before.chains.keys() - after.chains.keys())
            purge = loads_chain_list(script) or len(stale) >= STALE_CHAINS_MAX
            if purge:
                script += render_purge(stale, table=self.table)
            self._in_sync = False  # until nft says it applied (a crash or a cancel leaves it unknown)
            try:
                await self._run(script, "incremental")
                self._in_sync, self._stale = True, set() if purge else stale
                return
            except NftError as exc:
                log.warning("proxy: incremental nftables update failed (%s); replacing the table", exc)
        await self._run(render_full(self._desired.ruleset, table=self.table, mark=self.mark,
                                    service_cidr=ctx.service_cidr), "full")
        self._in_sync, self._stale = True, set()

    async def _run(self, script: str, mode: str) -> None:
        self.stats.nft_seconds = await self.nft.run(script)
        self.stats.mode, self.stats.script_bytes = mode, len(script)
        if mode == "full":
            self.stats.full_applies += 1
        else:
            self.stats.incremental_applies += 1

    async def cleanup(self) -> None:
        self._desired, self._in_sync, self._stale = None, False, set()
        try:
            await self.nft.run(render_delete(table=self.table))
        except (NftError, FileNotFoundError) as exc:
            log.warning("proxy: could not delete nftables table %s: %s", self.table, exc)
