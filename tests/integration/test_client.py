"""kubelite's own client and informers against the server, over the internal Unix socket."""

from __future__ import annotations

import asyncio
from typing import Any

from kubelite.client import Client, Connection, Handlers, Informer
from kubelite.client.resources import CONFIGMAPS
from kubelite.objects.errors import AlreadyExists, Conflict, NotFound
from tests.integration.conftest import ServerThread


def run(server: ServerThread, coro: Any) -> Any:
    return server.call(coro)


def test_rest_client_crud_and_typed_errors(server: ServerThread, ns: str) -> None:
    async def scenario() -> None:
        assert server.runtime.socket_path is not None
        client = Client(Connection.unix(server.runtime.socket_path))
        try:
            made = await client.create(CONFIGMAPS, {"metadata": {"name": "c1"}, "data": {"a": "1"}}, ns)
            try:
                await client.create(CONFIGMAPS, {"metadata": {"name": "c1"}}, ns)
                raise AssertionError("expected AlreadyExists")
            except AlreadyExists:
                pass
            made["data"]["a"] = "2"
            updated = await client.update(CONFIGMAPS, made)
            try:
                await client.update(CONFIGMAPS, made)  # stale resourceVersion
                raise AssertionError("expected Conflict")
            except Conflict:
                pass
            patched = await client.patch(CONFIGMAPS, "c1", {"data": {"b": "3"}}, ns)
            assert patched["data"] == {"a": "2", "b": "3"}
            assert int(patched["metadata"]["resourceVersion"]) > int(updated["metadata"]["resourceVersion"])
            await client.delete(CONFIGMAPS, "c1", ns)
            try:
                await client.get(CONFIGMAPS, "c1", ns)
                raise AssertionError("expected NotFound")
            except NotFound:
                pass
        finally:
            await client.close()

    run(server, scenario())


def test_informer_follows_changes_and_relists_after_compaction(server: ServerThread, ns: str) -> None:
    async def scenario() -> None:
        assert server.runtime.socket_path is not None
        client = Client(Connection.unix(server.runtime.socket_path))
        await client.create(CONFIGMAPS, {"metadata": {"name": "before"}}, ns)
        informer = Informer(client, CONFIGMAPS, namespace=ns, watch_timeout=1)
        seen: list[tuple[str, str]] = []
        informer.add_handlers(Handlers(on_add=lambda o: seen.append(("add", o["metadata"]["name"])),
                                       on_update=lambda a, b: seen.append(("update", b["metadata"]["name"])),
                                       on_delete=lambda o: seen.append(("delete", o["metadata"]["name"]))))
        informer.add_index("label", lambda o: list((o["metadata"].get("labels") or {}).values()))
        task = asyncio.create_task(informer.run())
        try:
            await asyncio.wait_for(informer.wait_synced(), 5)
            await client.create(CONFIGMAPS, {"metadata": {"name": "x", "labels": {"k": "blue"}}}, ns)
            await client.patch(CONFIGMAPS, "x", {"metadata": {"labels": {"k": "green"}}}, ns)
            await client.delete(CONFIGMAPS, "before", ns)
            await _until(lambda: ("delete", "before") in seen)
            assert seen == [("add", "before"), ("add", "x"), ("update", "x"), ("delete", "before")]
            assert [o["metadata"]["name"] for o in informer.by_index("label", "green")] == ["x"]
            assert informer.by_index("label", "blue") == []
            # compact away the informer's position; its next watch gets 410 and it re-lists
            store = server.runtime.store
            await client.create(CONFIGMAPS, {"metadata": {"name": "late"}}, ns)
            await client.create(CONFIGMAPS, {"metadata": {"name": "elsewhere"}}, "default")  # unseen revision
            await store.compact(await store.current_revision())
            relists = informer.relists
            await asyncio.sleep(1.5)  # the watch times out (1 s) and resumes from a compacted revision
            await client.create(CONFIGMAPS, {"metadata": {"name": "after"}}, ns)
            await _until(lambda: informer.get(f"{ns}/after") is not None)
            assert set(informer.cache) == {f"{ns}/x", f"{ns}/late", f"{ns}/after"}
            assert informer.relists == relists + 1
            await client.delete(CONFIGMAPS, "elsewhere", "default")
        finally:
            task.cancel()
            await client.close()

    run(server, scenario())


async def _until(predicate: Any, timeout: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.02)
