"""`GET /containerLogs/<namespace>/<pod>/<container>`: a container's log as plain text.

Query parameters are PodLogOptions as the API server forwards them (follow, tailLines,
sinceSeconds, sinceTime, timestamps, previous, limitBytes). The body streams; with `follow` it
stays open until the container stops (or the client leaves), which is how `kubectl logs -f` ends.
"""

from __future__ import annotations

import time

from aiohttp import web

from kubelite.agent.server import crilog
from kubelite.agent.server.targets import (
    PodSource,
    check_container,
    container_running,
    find_pod,
    log_unavailable,
    no_previous,
)
from kubelite.lib.httpstreams import until_disconnected
from kubelite.objects.errors import BadRequest


async def serve_logs(request: web.Request, source: PodSource) -> web.StreamResponse:
    info = request.match_info
    target = find_pod(source, info["namespace"], info["pod"], request.query.get("uid"))
    container = check_container(target, info["container"])
    try:
        options = crilog.options_from_query(request.query, now_ns=time.time_ns())
    except ValueError as exc:
        raise BadRequest(str(exc)) from None
    path = target.runtime.log_path(target.uid, container, previous=options.previous)
    if path is None or not path.exists():
        raise no_previous(target.pod, container) if options.previous else log_unavailable(target.pod, container)
    response = web.StreamResponse(headers={"Content-Type": "text/plain"})
    await response.prepare(request)

    async def copy() -> None:
        async for chunk in crilog.stream_log(path, options, running=lambda: container_running(target, container)):
            await response.write(chunk)

    try:
        await until_disconnected(request, copy())
        await response.write_eof()
    except ConnectionError:
        pass  # the client left mid-write
    return response
