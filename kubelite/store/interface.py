"""The store: a revisioned key-value log with watch, shaped like etcd's v3 API.

It knows keys and bytes, never kinds. Every successful write gets the next cluster-wide revision;
`mod_revision` of a key is the revision of its last write, which the API server exposes as the
object's resourceVersion. Writes are guarded by compare-and-swap on that revision.

Invariants every backend keeps (tested once, for all backends, in tests/unit/store):
- revisions are strictly increasing and never reused, also across restarts;
- a watch delivers every write under its prefix after its start revision, in revision order,
  exactly once; a watch from a compacted revision raises `Compacted`;
- a slow watcher is dropped (its iterator raises `WatcherOverflow`), never blocking writers.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Literal, Protocol


@dataclass(frozen=True, slots=True)
class KeyValue:
    key: str
    value: bytes
    create_revision: int
    mod_revision: int


@dataclass(frozen=True, slots=True)
class Event:
    type: Literal["PUT", "DELETE"]
    kv: KeyValue  # for DELETE: the key with its last value, mod_revision = the delete's revision
    prev: KeyValue | None
    created: bool = False  # a PUT that created the key


@dataclass(frozen=True, slots=True)
class ListResult:
    items: list[KeyValue]
    revision: int  # the revision the list reflects
    more: bool  # True when `limit` cut the list; continue after items[-1].key


class StoreError(Exception):
    """Base class: library errors (sqlite3, http) never leave the store as themselves."""


class KeyExists(StoreError):
    pass


class KeyNotFound(StoreError):
    pass


class RevisionMismatch(StoreError):
    """Compare-and-swap failed: the key's mod_revision is not the expected one."""

    def __init__(self, current: KeyValue | None) -> None:
        super().__init__("revision mismatch")
        self.current = current


class Compacted(StoreError):
    """The requested revision is older than the oldest revision kept."""

    def __init__(self, compact_revision: int) -> None:
        super().__init__(f"required revision has been compacted (oldest is {compact_revision})")
        self.compact_revision = compact_revision


class FutureRevision(StoreError):
    """The requested revision is newer than the current one."""


class WatcherOverflow(StoreError):
    """The watcher fell too far behind and was dropped; the client must re-list."""


class Store(Protocol):
    async def get(self, key: str) -> KeyValue | None: ...

    async def list(self, prefix: str, *, limit: int = 0, start_after: str = "",
                   revision: int = 0) -> ListResult: ...

    async def count(self, prefix: str) -> int: ...

    async def create(self, key: str, value: bytes) -> KeyValue: ...

    async def update(self, key: str, value: bytes, *, expected_revision: int) -> KeyValue: ...

    async def delete(self, key: str, *, expected_revision: int = 0) -> KeyValue: ...

    def watch(self, prefix: str, *, start_revision: int) -> AsyncIterator[Event]:
        """Events with revision > start_revision. start_revision=0 means 'from now'."""
        ...

    async def compact(self, revision: int) -> None: ...

    async def current_revision(self) -> int: ...

    async def compact_revision(self) -> int: ...

    async def close(self) -> None: ...


def prefix_end(prefix: str) -> str:
    """The smallest string greater than every string starting with `prefix` (etcd's range_end)."""
    return prefix[:-1] + chr(ord(prefix[-1]) + 1) if prefix else "\U0010ffff"
