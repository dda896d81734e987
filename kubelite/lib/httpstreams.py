"""Helpers for long-lived aiohttp responses (followed logs, proxied streams).

aiohttp does not cancel a handler when its client goes away, and a handler that is waiting for
data to arrive (a log being followed) only notices when it next writes. `until_disconnected` runs
the streaming work beside a watcher that cancels it once the client's connection is gone.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable
from typing import TypeVar

from aiohttp import web

T = TypeVar("T")
CHECK_INTERVAL = 0.5


def client_gone(request: web.Request) -> bool:
    transport = request.transport
    return transport is None or transport.is_closing()


async def until_disconnected(request: web.Request, work: Awaitable[T], *,
                             interval: float = CHECK_INTERVAL) -> T | None:
    """`await work`, or None once the client has disconnected (the work is then cancelled)."""
    task = asyncio.ensure_future(work)
    try:
        while True:
            done, _ = await asyncio.wait({task}, timeout=interval)
            if done:
                return task.result()
            if client_gone(request):
                return None
    finally:
        if not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
