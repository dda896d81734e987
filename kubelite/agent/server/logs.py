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
    Target,
    check_container,
    find_pod,
    log_unavailable,
    no_previous,
)
from kubelite.lib.httpstreams import until_disconnected
from kubelite.objects.errors import BadRequest


def container_running(target: Target, container: str) -> bool:
    """Whether the runtime still runs the container (a follow ends when it does not)."""
    pod_status = getattr(target.runtime, "pod_status", None)
    status = pod_status(target.uid) if callable(pod_status) else None
    if status is None:
        return False
    state = status.containers.get(container) or status.init_containers.get(container)
    return state is not None and state.state == "running"


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
