"""Pulls publish by adopting their staged blobs (`ImageStore.adopt`): against a fake registry that
can hold a transfer halfway, an image removal (with its garbage collection) in the middle of a
pull takes nothing the pull counts on, and a pull cancelled mid-transfer or mid-adopt leaves no
partial blob, no dangling name, nothing staged and no lease. No root; loopback only."""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from kubelite.images.distribution import pull
from kubelite.images.oci import OCI_MANIFEST
from kubelite.images.store import ImageStore
from kubelite.images.testimages import BuiltImage, LayerBuilder, build_image, write_layout
from tests.integration.distribution_fakes import FakeRegistry

BASE = LayerBuilder().dir("bin").file("bin/tool", "#!/bin/sh\n", 0o755).build()
APP = LayerBuilder().dir("app").file("app/main", "main " * 50_000).build()


class HoldingRegistry(FakeRegistry):
    """Blobs in `hold` are sent halfway, then wait until `release` is set (or the client goes)."""

    def __init__(self) -> None:
        super().__init__()
        self.hold: set[str] = set()
        self.holding = asyncio.Event()
        self.release = asyncio.Event()

    @contextlib.asynccontextmanager
    async def serve(self) -> AsyncIterator[str]:
        async with super().serve() as host:
            try:
                yield host
            finally:
                self.release.set()  # a held response ends before the server's shutdown waits for it

    async def _blob(self, request: web.Request) -> web.StreamResponse:
        digest = request.match_info["digest"]
        if digest not in self.hold or request.method != "GET":
            return await super()._blob(request)
        self.requests["GET blob"] += 1
        data = self.blobs[digest]
        response = web.StreamResponse(headers={"Content-Type": "application/octet-stream"})
        response.content_length = len(data)
        await response.prepare(request)
        await response.write(data[: len(data) // 2])
        self.holding.set()
        await self.release.wait()
        await response.write(data[len(data) // 2:])
        await response.write_eof()
        return response


def registry_for(image: BuiltImage, *, hold_app_layer: bool = True) -> HoldingRegistry:
    """A registry serving `image` as team/app:1.0; its APP layer held halfway unless told."""
    fake = HoldingRegistry()
    fake.put_blobs({d: b for d, b in image.blobs.items() if d != image.manifest.digest})
    fake.put_manifest("team/app", "1.0", OCI_MANIFEST, image.blobs[image.manifest.digest])
    if hold_app_layer:
        fake.hold.add(json.loads(image.blobs[image.manifest.digest])["layers"][-1]["digest"])
    return fake


def leftovers(store: ImageStore) -> dict[str, Any]:
    def listing(path: Path) -> list[str]:
        return sorted(p.name for p in path.iterdir()) if path.exists() else []
    return {"names": [e.name for e in store.index.entries()], "blobs": sorted(store.blobs.digests()),
            "ingest": listing(store.blobs.ingest_dir), "leases": listing(store.leases.dir)}


async def test_an_image_removal_during_a_pull_takes_nothing_the_pull_counts_on(tmp_path: Path) -> None:
    store = ImageStore(tmp_path / "store")
    base = build_image([BASE])
    store.import_oci_layout(write_layout(tmp_path / "layout", {"example.com/base:1": base}))
    image = build_image([BASE, APP], cmd=["/app/main"])
    fake = registry_for(image)
    async with fake.serve() as host:
        task = asyncio.ensure_future(pull(store, f"{host}/team/app:1.0"))
        await asyncio.wait_for(fake.holding.wait(), 30)  # BASE was found in the store, APP is half here
        removed, gc = await asyncio.to_thread(store.remove, "example.com/base:1")  # BASE is unnamed now
        assert removed == ["example.com/base:1"]
        assert not set(gc.blobs) & set(image.blobs)  # the pull's lease kept what it needs
        fake.release.set()
        result = await asyncio.wait_for(task, 30)
    assert fake.requests["GET blob"] == 2  # config and APP: BASE came from the store
    record = store.get(result.name)
    assert (record.layer_dirs[0] / "bin/tool").exists() and (record.layer_dirs[1] / "app/main").exists()
    assert set(image.blobs) <= store.blobs.digests()
    assert leftovers(store)["ingest"] == [] and leftovers(store)["leases"] == []


async def test_a_pull_cancelled_mid_transfer_leaves_nothing(tmp_path: Path) -> None:
    store = ImageStore(tmp_path / "store")
    image = build_image([BASE, APP], cmd=["/app/main"])
    fake = registry_for(image)
    async with fake.serve() as host:
        task = asyncio.ensure_future(pull(store, f"{host}/team/app:1.0"))
        await asyncio.wait_for(fake.holding.wait(), 30)  # config and BASE are staged by now or soon
        task.cancel()  # what Ctrl-C does to `kubelite image pull`
        with pytest.raises(asyncio.CancelledError):
            await task
    assert leftovers(store) == {"names": [], "blobs": [], "ingest": [], "leases": []}
    assert store.snapshots.diff_ids() == set()


async def test_a_pull_cancelled_while_adopting_waits_for_it_then_cleans_up(tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    store = ImageStore(tmp_path / "store")
    image = build_image([BASE, APP], cmd=["/app/main"])
    fake = registry_for(image, hold_app_layer=False)
    entered, proceed = threading.Event(), threading.Event()
    real_adopt = store.adopt

    def slow_adopt(*args: Any, **kwargs: Any) -> Any:
        entered.set()
        proceed.wait(30)
        return real_adopt(*args, **kwargs)

    monkeypatch.setattr(store, "adopt", slow_adopt)
    async with fake.serve() as host:
        task = asyncio.ensure_future(pull(store, f"{host}/team/app:1.0"))
        assert await asyncio.to_thread(entered.wait, 30)
        task.cancel()
        await asyncio.sleep(0.05)  # the cancellation is delivered while the adopt still runs
        proceed.set()
        with pytest.raises(asyncio.CancelledError):
            await task
    # the adopt ran to its end on staged files nobody removed under it: the image is whole
    record = store.get(f"{host}/team/app:1.0")
    assert record.digest == image.manifest.digest and set(image.blobs) <= store.blobs.digests()
    assert leftovers(store)["ingest"] == [] and leftovers(store)["leases"] == []
