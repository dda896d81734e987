"""The whole desired ruleset of one node, kept current one Service at a time (pure).

`Desired.put({service key: fragment or None})` swaps in the changed Services' fragments
(model.service_fragment output; None: the Service is gone) and returns `(before, after)`: every
entry of the whole ruleset those fragments touch, as it was and as it is now. Nothing outside them
changed, so `nft.render_update(before, after)` is the difference of the whole table, at a cost
that follows the changed Services, not the number of Services (the old way, assembling all 5,000
fragments and comparing two whole rulesets, took ~40 ms for one endpoint change).

Claims: a map key or set member may be claimed by several Services (two Services listing the same
externalIP and port, say; every ClusterIP Service adds its address to `cluster-ips`). A set holds a
member while anyone claims it; a map key holds the verdict of the smallest claiming Service key, so
the outcome does not depend on the order of changes. The node's own NodePort addresses are claimed
by "" (before any Service). Chains and affinity sets need no claims: their names embed the
Service's namespace and name (model.py), so each has exactly one owner.
Invariant: `ruleset` equals model.assemble(fragments, ctx) except, for a map key claimed twice,
which claim wins.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from kubelite.proxy.model import NODEPORT_IPS, MapKey, NodeContext, Ruleset, Verdict

NODE = ""  # the claimant of the node's own entries
MapSlot = tuple[str, MapKey]  # (map name, key)
SetSlot = tuple[str, str]  # (set name, member)


def _map_slots(rs: Ruleset) -> Iterator[tuple[MapSlot, Verdict]]:
    for name, entries in rs.maps.items():
        for key, verdict in entries.items():
            yield (name, key), verdict


def _set_slots(rs: Ruleset) -> Iterator[SetSlot]:
    for name, members in rs.sets.items():
        for member in members:
            yield name, member


class Desired:
    def __init__(self, ctx: NodeContext) -> None:
        self.ctx = ctx
        self.ruleset = Ruleset()
        self.fragments: dict[str, Ruleset] = {}
        self._map_claims: dict[MapSlot, dict[str, Verdict]] = {}
        self._set_claims: dict[SetSlot, set[str]] = {}
        node = Ruleset()
        node.sets[NODEPORT_IPS].update(ctx.node_ips)
        self.put({NODE: node})

    def put(self, changes: Mapping[str, Ruleset | None]) -> tuple[Ruleset, Ruleset]:
        """Replace these Services' fragments; return the touched entries before and after."""
        swaps = [(key, self.fragments.get(key), fragment) for key, fragment in changes.items()]
        touched = [rs for _, old, new in swaps for rs in (old, new) if rs is not None]
        maps = {slot for rs in touched for slot, _ in _map_slots(rs)}
        sets = {slot for rs in touched for slot in _set_slots(rs)}
        before, after = Ruleset(), Ruleset()
        self._copy(before, maps, sets)
        for key, old, new in swaps:
            if old is not None:
                self._release(key, old, before)
            if new is not None:
                self._claim(key, new, after)
                self.fragments[key] = new
            else:
                self.fragments.pop(key, None)
        self._copy(after, maps, sets)
        self._write_back(maps, sets)
        return before, after

    def fill(self, fragments: Mapping[str, Ruleset]) -> None:
        """`put` for a whole node at once, when nobody needs the difference (a full sync): the
        map and set entries are resolved once at the end instead of per Service."""
        scratch = Ruleset()
        for key, fragment in fragments.items():
            old = self.fragments.get(key)
            if old is not None:
                self._release(key, old, scratch)
            self._claim(key, fragment, scratch)
            self.fragments[key] = fragment
        for entries in self.ruleset.maps.values():
            entries.clear()
        for members in self.ruleset.sets.values():
            members.clear()
        for (name, map_key), claims in self._map_claims.items():
            self.ruleset.maps[name][map_key] = claims[min(claims)]
        for name, member in self._set_claims:
            self.ruleset.sets[name].add(member)

    # ----- claims --------------------------------------------------------------------------------

    def _release(self, key: str, fragment: Ruleset, before: Ruleset) -> None:
        for map_slot, _ in _map_slots(fragment):
            claims = self._map_claims[map_slot]
            del claims[key]
            if not claims:
                del self._map_claims[map_slot]
        for set_slot in _set_slots(fragment):
            owners = self._set_claims[set_slot]
            owners.discard(key)
            if not owners:
                del self._set_claims[set_slot]
        for name, rules in fragment.chains.items():
            before.chains[name] = rules
            del self.ruleset.chains[name]
        for name, timeout in fragment.affinity_sets.items():
            before.affinity_sets[name] = timeout
            del self.ruleset.affinity_sets[name]

    def _claim(self, key: str, fragment: Ruleset, after: Ruleset) -> None:
        for map_slot, verdict in _map_slots(fragment):
            self._map_claims.setdefault(map_slot, {})[key] = verdict
        for set_slot in _set_slots(fragment):
            self._set_claims.setdefault(set_slot, set()).add(key)
        after.chains.update(fragment.chains)
        self.ruleset.chains.update(fragment.chains)
        after.affinity_sets.update(fragment.affinity_sets)
        self.ruleset.affinity_sets.update(fragment.affinity_sets)

    # ----- resolved values ----------------------------------------------------------------------------

    def _verdict(self, slot: MapSlot) -> Verdict | None:
        claims = self._map_claims.get(slot)
        return claims[min(claims)] if claims else None

    def _copy(self, into: Ruleset, maps: set[MapSlot], sets: set[SetSlot]) -> None:
        """The resolved values of these map and set slots, into a partial ruleset."""
        for slot in maps:
            verdict = self._verdict(slot)
            if verdict is not None:
                into.maps[slot[0]][slot[1]] = verdict
        for name, member in sets:
            if (name, member) in self._set_claims:
                into.sets[name].add(member)

    def _write_back(self, maps: set[MapSlot], sets: set[SetSlot]) -> None:
        for slot in maps:
            verdict = self._verdict(slot)
            if verdict is None:
                self.ruleset.maps[slot[0]].pop(slot[1], None)
            else:
                self.ruleset.maps[slot[0]][slot[1]] = verdict
        for name, member in sets:
            if (name, member) in self._set_claims:
                self.ruleset.sets[name].add(member)
            else:
                self.ruleset.sets[name].discard(member)
