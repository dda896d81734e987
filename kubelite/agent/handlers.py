"""The actions probes and lifecycle hooks run: exec in the container (through the runtime's
StreamingRuntime.exec), an HTTP GET or a TCP connect to the pod (host network side, to the pod IP
unless the handler names a host), and sleep.

Every action returns an `Outcome`: ok, the output (exec: stdout+stderr, at most 10 KiB, as
upstream; otherwise upstream's wording of what went wrong, e.g. `HTTP probe failed with
statuscode: 500`), and `unknown` when the kubelet could not run it at all (the result is then
thrown away, as upstream's prober does with its errors).
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from typing import Any

import aiohttp

from kubelite.agent.config import KUBELET_VERSION

Obj = dict[str, Any]
MAX_OUTPUT = 10 * 1024
USER_AGENT = "kube-probe/" + ".".join(KUBELET_VERSION.lstrip("v").split(".")[:2])


@dataclass(frozen=True)
class Outcome:
    ok: bool
    output: str = ""
    unknown: bool = False


def resolve_port(port: Any, container: Obj) -> int:
    """A handler's port: a number, or the name of one of the container's ports."""
    if isinstance(port, int):
        return port
    text = str(port or "")
    if text.isdigit():
        return int(text)
    for item in container.get("ports") or []:
        if item.get("name") == text:
            return int(item.get("containerPort") or 0)
    raise ValueError(f"couldn't find port {text!r} in container {container.get('name')!r}")


async def run_exec(runtime: Any, pod_uid: str, container: str, command: list[str], *, timeout: float) -> Outcome:
    exec_ = getattr(runtime, "exec", None)
    if exec_ is None:
        return Outcome(False, "the container runtime cannot exec", unknown=True)
    try:
        session = await exec_(pod_uid, container, command, tty=False, stdin=False)
    except Exception as exc:  # the container went away, the runtime failed to exec
        return Outcome(False, str(exc), unknown=True)
    try:
        output, code = await asyncio.wait_for(_collect(session), timeout)
    except TimeoutError:
        return Outcome(False, f'command "{" ".join(command)}" timed out')
    finally:
        with contextlib.suppress(Exception):
            await session.close()
    return Outcome(code == 0, output)


async def _collect(session: Any) -> tuple[str, int]:
    async def read(stream: asyncio.StreamReader | None) -> bytes:
        return await stream.read(MAX_OUTPUT) if stream is not None else b""

    out, err = await asyncio.gather(read(session.stdout), read(session.stderr))
    code = await session.wait()
    return (out + err)[:MAX_OUTPUT].decode("utf-8", "replace"), int(code)


def http_url(handler: Obj, container: Obj, pod_ip: str) -> tuple[str, dict[str, str]]:
    host = str(handler.get("host") or pod_ip)
    port = resolve_port(handler.get("port"), container)
    scheme = str(handler.get("scheme") or "HTTP").lower()
    path = str(handler.get("path") or "/")
    if not path.startswith("/"):
        path = "/" + path
    headers = {"User-Agent": USER_AGENT, "Accept": "*/*"}
    for header in handler.get("httpHeaders") or []:
        headers[str(header.get("name"))] = str(header.get("value") or "")
    return f"{scheme}://{_host(host)}:{port}{path}", headers


def _host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


async def run_http(session: aiohttp.ClientSession, url: str, headers: dict[str, str], *, timeout: float,
                   statuses: bool = True) -> Outcome:
    """GET `url`; a 2xx/3xx answer is success (`statuses` False: any answer is, as for hooks)."""
    try:
        async with session.get(url, headers=headers, timeout=aiohttp.ClientTimeout(total=timeout),
                               allow_redirects=True, ssl=False) as response:
            body = await response.content.read(MAX_OUTPUT)
            if not statuses or 200 <= response.status < 400:
                return Outcome(True, body.decode("utf-8", "replace"))
            return Outcome(False, f"HTTP probe failed with statuscode: {response.status}")
    except TimeoutError:
        return Outcome(False, f'Get "{url}": context deadline exceeded (Client.Timeout exceeded while awaiting headers)')
    except aiohttp.ClientConnectorError as exc:
        return Outcome(False, f'Get "{url}": dial tcp {exc.host}:{exc.port}: connect: {_reason(exc.os_error)}')
    except aiohttp.ClientError as exc:
        return Outcome(False, f'Get "{url}": {exc}')


def _reason(exc: OSError) -> str:
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    return (exc.strerror or str(exc)).lower()


async def run_tcp(host: str, port: int, *, timeout: float) -> Outcome:
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
    except TimeoutError:
        return Outcome(False, f"dial tcp {_host(host)}:{port}: i/o timeout")
    except OSError as exc:
        return Outcome(False, f"dial tcp {_host(host)}:{port}: connect: {_reason(exc)}")
    writer.close()
    with contextlib.suppress(Exception):
        await writer.wait_closed()
    return Outcome(True)


async def run_hook(runtime: Any, session: Any, pod: Obj, container: Obj, hook: Obj, *, purpose: str,
                   pod_ip: str, timeout: float) -> str:
    """Run a postStart/preStop handler for at most `timeout` seconds; "" on success (or when it
    ran out of time: the grace period goes on, as upstream), else upstream's message for the
    Failed*Hook event. `session` makes the aiohttp session for httpGet."""
    try:
        return await asyncio.wait_for(_hook(runtime, session, pod, container, hook, purpose=purpose, pod_ip=pod_ip,
                                            timeout=timeout), timeout + 0.5)
    except TimeoutError:
        return ""


async def _hook(runtime: Any, session: Any, pod: Obj, container: Obj, hook: Obj, *, purpose: str,
                pod_ip: str, timeout: float) -> str:
    from kubelite.agent.restarts import pod_ref

    meta, name = pod.get("metadata") or {}, str(container.get("name"))
    scripted = getattr(runtime, "scripted_handler", None)
    if scripted is not None:
        result = await scripted(str(meta.get("uid")), name, purpose)
        if result is not None:
            return "" if result[0] else f"{purpose} hook for Container \"{name}\" in Pod \"{pod_ref(pod)}\" failed"
    where = f'for Container "{name}" in Pod "{pod_ref(pod)}"'
    if "exec" in hook:
        command = [str(a) for a in (hook["exec"] or {}).get("command") or []]
        outcome = await run_exec(runtime, str(meta.get("uid")), name, command, timeout=timeout)
        if outcome.ok:
            return ""
        return (f"Exec lifecycle hook ([{' '.join(command)}]) {where} failed - error: command "
                f"'{' '.join(command)}' exited with a failure, message: {go_string(outcome.output)}")
    if "httpGet" in hook:
        try:
            url, headers = http_url(hook["httpGet"] or {}, container, pod_ip)
        except ValueError as exc:
            return f"HTTP lifecycle hook ({(hook['httpGet'] or {}).get('path', '')}) {where} failed - error: {exc}"
        outcome = await run_http(session(), url, headers, timeout=timeout, statuses=False)
        return "" if outcome.ok else \
            f"HTTP lifecycle hook ({(hook['httpGet'] or {}).get('path') or '/'}) {where} failed - error: {outcome.output}"
    if "sleep" in hook:
        await asyncio.sleep(min(float((hook["sleep"] or {}).get("seconds") or 0), timeout))
    return ""


def go_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
