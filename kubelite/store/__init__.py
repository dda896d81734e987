"""Revisioned key-value stores, chosen by URL: `sqlite:///path/state.db` (default), `memory://`."""

from __future__ import annotations

from kubelite.store.interface import Store


def open_store(url: str) -> Store:
    scheme, sep, rest = url.partition("://")
    if not sep:
        raise ValueError(f"datastore URL {url!r} has no scheme; use sqlite:///path or memory://")
    if scheme == "sqlite":
        from kubelite.store.sqlite import SqliteStore

        return SqliteStore(rest)  # sqlite:///abs/path -> /abs/path; sqlite://rel.db -> rel.db
    if scheme == "memory":
        from kubelite.store.sqlite import SqliteStore

        return SqliteStore(":memory:")
    raise ValueError(f"unsupported datastore {scheme!r}: supported are sqlite:///path and memory://")
