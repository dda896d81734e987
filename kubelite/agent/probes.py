"""Liveness, readiness and startup probes (upstream's prober workers).

One worker task per (pod, container, probe kind), only for containers that declare the probe, so
pods without probes cost nothing. A worker wakes every periodSeconds (or when the kubelet starts
the container), looks at the container (`ProbeContext`, from the kubelet), lets the pure
`ProbeTracker` decide whether to probe, runs the handler (`handlers`) and feeds the result back:

- a new container ID resets the verdict to the kind's initial value (readiness: not ready;
  liveness, startup: success) unless the kubelet seeded it (an adopted container keeps the
  ready/started it had before an agent restart);
- nothing is probed before initialDelaySeconds; liveness and readiness wait until the startup
  probe succeeded, the startup probe stops probing once it did;
- the verdict flips after successThreshold / failureThreshold consecutive results; a failed
  liveness or startup verdict puts the worker on hold until the container is replaced;
- every failed probe records an `Unhealthy` event (`Liveness probe failed: <output>`).

A verdict change calls `notify(pod uid)`, and the pod worker syncs: readiness feeds the
container's `ready`, startup its `started`, a liveness failure gets the container killed and
restarted. A runtime may script probe results (`scripted_handler`, the hollow runtime does).
Probe periods and initial delays are multiplied by `scale` (tests only; 1.0 is upstream's).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from kubelite.agent import handlers
from kubelite.agent.handlers import Outcome

log = logging.getLogger(__name__)
Obj = dict[str, Any]
KINDS = ("startup", "liveness", "readiness")
FIELDS = {"startup": "startupProbe", "liveness": "livenessProbe", "readiness": "readinessProbe"}
TITLES = {"startup": "Startup", "liveness": "Liveness", "readiness": "Readiness"}


@dataclass(frozen=True)
class ProbeSpec:
    kind: str
    handler: Obj  # the probe object: exec / httpGet / tcpSocket / grpc
    initial_delay: float = 0.0
    period: float = 10.0
    timeout: float = 1.0
    success_threshold: int = 1
    failure_threshold: int = 3

    @classmethod
    def of(cls, container: Obj, kind: str) -> ProbeSpec | None:
        probe = container.get(FIELDS[kind])
        if not isinstance(probe, dict):
            return None
        return cls(kind, probe, float(probe.get("initialDelaySeconds") or 0), float(probe.get("periodSeconds") or 10),
                   float(probe.get("timeoutSeconds") or 1), int(probe.get("successThreshold") or 1),
                   int(probe.get("failureThreshold") or 3))


@dataclass
class ProbeContext:
    """The container as a worker sees it, from the kubelet."""

    pod: Obj
    container: Obj
    container_id: str  # "" when the container was never created
    running: bool
    since_start: float  # real seconds the current instance has run
    pod_ip: str = ""


@dataclass
class ProbeTracker:
    """The state of one probe worker (upstream worker.doProbe), pure."""

    spec: ProbeSpec
    container_id: str = ""
    result: bool = False
    on_hold: bool = False
    last: bool | None = None
    run: int = 0

    def initial(self) -> bool:
        return self.spec.kind != "readiness"

    def observe(self, ctx: ProbeContext, *, started: bool, seed: bool | None = None) -> str:
        """"probe", "wait" (not now) or "stop" (the worker is done)."""
        if not ctx.container_id:
            return "wait"
        if ctx.container_id != self.container_id:
            self.container_id, self.on_hold, self.last, self.run = ctx.container_id, False, None, 0
            self.result = self.initial() if seed is None else seed
        if self.on_hold:
            return "wait"
        if not ctx.running:
            self.result = False
            never = (ctx.pod.get("spec") or {}).get("restartPolicy") == "Never"
            return "stop" if never and ctx.container.get("restartPolicy") != "Always" else "wait"
        if ctx.pod["metadata"].get("deletionTimestamp") and self.spec.kind != "readiness":
            self.result = True
            return "stop"
        if ctx.since_start < self.spec.initial_delay:
            return "wait"
        if (self.spec.kind == "startup") == started:
            return "wait"  # startup probes stop once started; the others wait for it
        return "probe"

    def record(self, ok: bool) -> bool:
        """Account one probe result; True when the verdict changed."""
        if self.last == ok:
            self.run += 1
        else:
            self.last, self.run = ok, 1
        threshold = self.spec.success_threshold if ok else self.spec.failure_threshold
        if self.run < threshold:
            return False
        changed = self.result != ok
        self.result = ok
        if not ok and self.spec.kind != "readiness":
            self.on_hold, self.run = True, 0
        return changed


@dataclass
class _Worker:
    uid: str
    name: str
    tracker: ProbeTracker
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None


ContextFunc = Callable[[str, str], ProbeContext | None]
EventFunc = Callable[[Obj, str, str, str], None]


class ProbeManager:
    def __init__(self, runtime: Any, *, context: ContextFunc, notify: Callable[[str], None],
                 record: EventFunc, scale: float = 1.0) -> None:
        self.runtime, self.context, self.notify, self.record = runtime, context, notify, record
        self.scale = scale
        self._workers: dict[tuple[str, str, str], _Worker] = {}
        self._seeds: dict[tuple[str, str, str, str], bool] = {}  # (uid, name, kind, container id)
        self._session: aiohttp.ClientSession | None = None

    # ----- workers -----------------------------------------------------------------------------

    def add_pod(self, pod: Obj) -> None:
        """Start the workers of the pod's probes (idempotent: probes are immutable)."""
        uid, spec = str(pod["metadata"]["uid"]), pod.get("spec") or {}
        containers = [*(c for c in spec.get("initContainers") or [] if c.get("restartPolicy") == "Always"),
                      *(spec.get("containers") or [])]
        for container in containers:
            for kind in KINDS:
                probe = ProbeSpec.of(container, kind)
                key = (uid, str(container["name"]), kind)
                if probe is not None and key not in self._workers:
                    worker = self._workers[key] = _Worker(uid, key[1], ProbeTracker(probe))
                    worker.task = asyncio.get_running_loop().create_task(self._run(worker), name=f"probe:{key}")

    def seed(self, uid: str, name: str, container_id: str, *, ready: bool, started: bool) -> None:
        """An adopted container's verdicts from before an agent restart."""
        self._seeds[(uid, name, "readiness", container_id)] = ready
        self._seeds[(uid, name, "startup", container_id)] = started

    def wake(self, uid: str) -> None:
        for (w_uid, _, _), worker in self._workers.items():
            if w_uid == uid:
                worker.wake.set()

    async def remove_pod(self, uid: str) -> None:
        gone = [k for k in self._workers if k[0] == uid]
        tasks = [t for k in gone if (t := self._workers.pop(k).task) is not None]
        for key in [k for k in self._seeds if k[0] == uid]:
            del self._seeds[key]
        await _cancel(tasks)

    async def stop(self) -> None:
        tasks = [w.task for w in self._workers.values() if w.task is not None]
        self._workers.clear()
        await _cancel(tasks)
        if self._session is not None:
            await self._session.close()
            self._session = None

    # ----- verdicts ----------------------------------------------------------------------------

    def _verdict(self, uid: str, name: str, kind: str, container_id: str) -> bool | None:
        """The kind's verdict for this container instance; None when it has no such probe."""
        worker = self._workers.get((uid, name, kind))
        if worker is None:
            return None
        if worker.tracker.container_id == container_id:
            return worker.tracker.result
        return self._seeds.get((uid, name, kind, container_id), worker.tracker.initial() and kind != "startup")

    def started(self, uid: str, name: str, container_id: str) -> bool:
        verdict = self._verdict(uid, name, "startup", container_id)
        return True if verdict is None else verdict

    def ready(self, uid: str, name: str, container_id: str) -> bool:
        verdict = self._verdict(uid, name, "readiness", container_id)
        return True if verdict is None else verdict

    def failed(self, uid: str, name: str, container_id: str) -> str:
        """"liveness" or "startup" when that probe failed the running instance, else ""."""
        for kind in ("liveness", "startup"):
            worker = self._workers.get((uid, name, kind))
            if worker is not None and worker.tracker.container_id == container_id and worker.tracker.on_hold:
                return kind
        return ""

    # ----- the loop ----------------------------------------------------------------------------

    async def _run(self, worker: _Worker) -> None:
        spec = worker.tracker.spec
        while True:
            ctx = self.context(worker.uid, worker.name)
            if ctx is None:  # the kubelet forgot the pod: a later add_pod starts afresh
                if self._workers.get((worker.uid, worker.name, spec.kind)) is worker:
                    del self._workers[(worker.uid, worker.name, spec.kind)]
                return
            started = self.started(worker.uid, worker.name, ctx.container_id)
            seed = self._seeds.get((worker.uid, worker.name, spec.kind, ctx.container_id))
            decision = worker.tracker.observe(ctx, started=started, seed=seed)
            if decision == "stop":
                return
            wait = spec.period
            if decision == "probe":
                await self._probe(worker, ctx)
            elif ctx.running and ctx.since_start < spec.initial_delay:
                wait = min(wait, spec.initial_delay - ctx.since_start)
            worker.wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(worker.wake.wait(), max(wait * self.scale, 0.001))

    async def _probe(self, worker: _Worker, ctx: ProbeContext) -> None:
        kind = worker.tracker.spec.kind
        outcome = await self.run_probe(worker.uid, ctx, worker.tracker.spec)
        if outcome.unknown:
            log.debug("probe %s of %s/%s: %s", kind, worker.uid, worker.name, outcome.output)
            return
        if not outcome.ok:
            self.record(ctx.pod, "Warning", "Unhealthy", f"{TITLES[kind]} probe failed: {outcome.output}")
        if worker.tracker.record(outcome.ok):
            self.notify(worker.uid)

    async def run_probe(self, uid: str, ctx: ProbeContext, spec: ProbeSpec) -> Outcome:
        scripted = getattr(self.runtime, "scripted_handler", None)
        if scripted is not None:
            result = await scripted(uid, str(ctx.container["name"]), spec.kind)
            if result is not None:
                return Outcome(*result)
        timeout = spec.timeout  # a limit, not a wait: never scaled
        probe = spec.handler
        try:
            if "exec" in probe:
                command = [str(a) for a in (probe["exec"] or {}).get("command") or []]
                return await handlers.run_exec(self.runtime, uid, str(ctx.container["name"]), command, timeout=timeout)
            if "httpGet" in probe:
                url, headers = handlers.http_url(probe["httpGet"] or {}, ctx.container, ctx.pod_ip)
                return await handlers.run_http(self.session(), url, headers, timeout=timeout)
            if "tcpSocket" in probe:
                tcp = probe["tcpSocket"] or {}
                port = handlers.resolve_port(tcp.get("port"), ctx.container)
                return await handlers.run_tcp(str(tcp.get("host") or ctx.pod_ip), port, timeout=timeout)
        except ValueError as exc:
            return Outcome(False, str(exc))
        return Outcome(False, "grpc probes are not supported by this kubelet" if "grpc" in probe else
                       "probe has no handler")

    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            # no keep-alive, as upstream's prober: every probe is a fresh connection
            self._session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True, ssl=False))
        return self._session


async def _cancel(tasks: list[asyncio.Task[None]]) -> None:
    for task in tasks:
        task.cancel()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
