"""Pod startup benchmark for the runc node agent, beside raw `runc run` of the same rootfs in the same
run (the floor), and the agent's memory idle and with the pods running. Root only.

    sudo python bench/pods.py [--pods 50] [--serial 10]

Setup (tests/e2e/conftest.py `NodeCluster`): an in-process API server (TLS, nodeipam, scheduler) and
one `kubelite agent --runtime runc` process, the httpd test image already in its store.

1. floor: the httpd image's layers as a read-only overlay, one bundle per container (`runc spec`
   with httpd as the process, new namespaces of every kind), `runc run -d`, timed until it returns
   (the container's process runs); `--serial` one at a time, then `--pods` launched at once.
2. pods: the same image as bare pods (imagePullPolicy IfNotPresent), timed from the create request
   sent to the first watch event showing phase Running with Ready=True (scheduling, the kubelet's
   sandbox with CNI networking, conmon + runc, status write, watch delivery): `--serial` one at a
   time, then `--pods` created at once.
3. the agent's RSS before any pod, and with `--pods` pods running (plus their conmon monitors).

Prints p50/p99 of each and the ratios pod/floor. The client runs on its own event loop in this
process, the server on another (the API server shares the process, as in the e2e suite).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from kubelite.client import Client, Connection  # noqa: E402
from kubelite.client.resources import NAMESPACES, PODS  # noqa: E402
from kubelite.images.store import ImageStore  # noqa: E402
from kubelite.images.testimages import HTTPD_REF  # noqa: E402
from tests.e2e.conftest import NodeCluster, NodeSpec, host_problems, pod_ready, running_node_cluster  # noqa: E402

Obj = dict[str, Any]
HTTPD = ["httpd", "-f", "-p", "80", "-h", "/www"]
SPEC = NodeSpec(name="bench-node", ip="198.19.254.11", cluster_cidr="198.18.224.0/20", tag="klbn",
                controllers="nodeipam")


def percentile(samples: list[float], p: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p))] if ordered else 0.0


def summary(samples: list[float]) -> tuple[float, float]:
    return percentile(samples, 0.5) * 1000, percentile(samples, 0.99) * 1000


# ----- the floor: raw runc -----------------------------------------------------------------------

class RawRunc:
    """Bundles over one read-only overlay of the image's layers, run with a private runc root."""

    def __init__(self, work: Path, layer_dirs: tuple[Path, ...]) -> None:
        self.work, self.root, self.rootfs = work, work / "runc-root", work / "rootfs"
        self.rootfs.mkdir(parents=True)
        lower = ":".join(str(d) for d in reversed(layer_dirs))  # overlayfs lists the top layer first
        subprocess.run(["mount", "-t", "overlay", "overlay", "-o", f"lowerdir={lower}", str(self.rootfs)], check=True)
        self.ids: list[str] = []

    def bundle(self, cid: str) -> Path:
        bundle = self.work / "bundles" / cid
        bundle.mkdir(parents=True)
        subprocess.run(["runc", "spec", "--bundle", str(bundle)], check=True)
        spec = json.loads((bundle / "config.json").read_text())
        spec["root"] = {"path": str(self.rootfs), "readonly": True}
        spec["process"].update(terminal=False, args=HTTPD)
        spec["hostname"] = cid
        (bundle / "config.json").write_text(json.dumps(spec))
        return bundle

    async def run(self, cid: str) -> float:
        bundle = self.bundle(cid)
        with open(bundle / "out.log", "wb") as out:
            started = time.perf_counter()
            proc = await asyncio.create_subprocess_exec(
                "runc", "--root", str(self.root), "run", "-d", "--bundle", str(bundle), cid,
                stdin=subprocess.DEVNULL, stdout=out, stderr=out)
            code = await proc.wait()
        elapsed = time.perf_counter() - started
        if code != 0:
            raise RuntimeError(f"runc run {cid} failed: {(bundle / 'out.log').read_text()}")
        self.ids.append(cid)
        return elapsed

    def close(self) -> None:
        for cid in self.ids:
            subprocess.run(["runc", "--root", str(self.root), "kill", cid, "KILL"], capture_output=True)
        for cid in self.ids:
            for _ in range(100):
                if subprocess.run(["runc", "--root", str(self.root), "delete", cid], capture_output=True).returncode == 0:
                    break
                time.sleep(0.02)
        subprocess.run(["umount", str(self.rootfs)], check=False)


async def floor(work: Path, layer_dirs: tuple[Path, ...], *, serial: int, burst: int) -> tuple[list[float], list[float]]:
    raw = RawRunc(work, layer_dirs)
    try:
        one = [await raw.run(f"raw-serial-{i}") for i in range(serial)]
        many = list(await asyncio.gather(*(raw.run(f"raw-burst-{i}") for i in range(burst))))
        return one, many
    finally:
        raw.close()


# ----- pods through the API ----------------------------------------------------------------------

def pod(name: str) -> Obj:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": {"bench": "pods"}},
            "spec": {"containers": [{"name": "httpd", "image": HTTPD_REF, "imagePullPolicy": "IfNotPresent",
                                     "command": HTTPD}], "terminationGracePeriodSeconds": 1}}


class ReadyWatch:
    """When each pod is first seen bound, with its container running, and Running with Ready=True,
    through one watch of the namespace."""

    def __init__(self, client: Client, namespace: str) -> None:
        self.client, self.namespace = client, namespace
        self.ready: dict[str, float] = {}
        self.bound: dict[str, float] = {}
        self.started: dict[str, float] = {}
        self.changed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        listed = await self.client.list(PODS, self.namespace)
        self._task = asyncio.create_task(self._run(listed["metadata"]["resourceVersion"]))

    async def _run(self, rv: str) -> None:
        async for event in self.client.watch(PODS, self.namespace, resource_version=rv, bookmarks=False):
            obj, now = event["object"], time.perf_counter()
            name = obj.get("metadata", {}).get("name", "")
            if event["type"] not in ("ADDED", "MODIFIED"):
                continue
            if obj.get("spec", {}).get("nodeName"):
                self.bound.setdefault(name, now)
            if any("running" in (c.get("state") or {}) for c in obj.get("status", {}).get("containerStatuses") or []):
                self.started.setdefault(name, now)
            if name not in self.ready and pod_ready(obj):
                self.ready[name] = now
                self.changed.set()

    async def wait(self, names: list[str], timeout: float = 300) -> None:
        deadline = time.monotonic() + timeout
        while not all(n in self.ready for n in names):
            self.changed.clear()
            await asyncio.wait_for(self.changed.wait(), max(0.1, deadline - time.monotonic()))

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)


Phases = dict[str, list[float]]


def phases(watch: ReadyWatch, sent_at: dict[str, float]) -> Phases:
    """Per pod: created -> bound (scheduler), bound -> container running (kubelet, runtime, status
    write, watch), running -> Ready seen."""
    names = [n for n in sent_at if n in watch.ready]
    return {"created -> bound": [watch.bound.get(n, watch.ready[n]) - sent_at[n] for n in names],
            "bound -> running": [watch.started.get(n, watch.ready[n]) - watch.bound.get(n, sent_at[n]) for n in names],
            "running -> Ready": [watch.ready[n] - watch.started.get(n, watch.ready[n]) for n in names]}


async def pods(cluster: NodeCluster, *, serial: int, burst: int,
               namespace: str) -> tuple[list[float], list[float], Phases, Phases]:
    assert cluster.server.runtime.socket_path is not None
    client = Client(Connection.unix(cluster.server.runtime.socket_path), user_agent="bench/pods", max_connections=64)
    await client.create(NAMESPACES, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})
    watch = ReadyWatch(client, namespace)
    await watch.start()
    try:
        one, serial_sent = [], {}
        for i in range(serial):
            name = f"serial-{i}"
            sent = serial_sent[name] = time.perf_counter()
            await client.create(PODS, pod(name), namespace)
            await watch.wait([name])
            one.append(watch.ready[name] - sent)
        for i in range(serial):  # the burst starts on an empty node, so RSS is for --pods pods
            await client.delete(PODS, f"serial-{i}", namespace, grace_period=0)
        while cluster.sandboxes():
            await asyncio.sleep(0.1)
        names = [f"burst-{i}" for i in range(burst)]
        sent_at: dict[str, float] = {}
        assert cluster.agent is not None
        cpu_before, began = cpu_seconds(cluster.agent.pid), time.perf_counter()

        async def create(name: str) -> None:
            sent_at[name] = time.perf_counter()
            await client.create(PODS, pod(name), namespace)
        await asyncio.gather(*(create(n) for n in names))
        await watch.wait(names)
        cpu_after = cpu_seconds(cluster.agent.pid)
        print(f"burst of {burst}: {time.perf_counter() - began:.2f} s wall; agent CPU {cpu_after[0] - cpu_before[0]:.2f} s, "
              f"its commands (CNI plugins, ip, unshare, runc start) {cpu_after[1] - cpu_before[1]:.2f} s")
        return one, [watch.ready[n] - sent_at[n] for n in names], phases(watch, serial_sent), phases(watch, sent_at)
    finally:
        await watch.stop()
        await client.close()


def cpu_seconds(pid: int) -> tuple[float, float]:
    """(own, waited-for children's) CPU seconds of a process: the agent, and the CNI plugins, ip,
    unshare and runc commands it ran (conmon daemonizes, so conmon and `runc create` are not in it)."""
    import os

    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    utime, stime, cutime, cstime = (int(fields[i]) for i in (11, 12, 13, 14))
    return (utime + stime) / tick, (cutime + cstime) / tick


def conmon_rss_kib(runtime_root: Path) -> tuple[int, int]:
    """(count, total RSS) of the conmon processes of this node's containers."""
    count = total = 0
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().split(b"\0")
            if not cmdline[0].endswith(b"conmon") or str(runtime_root).encode() not in b" ".join(cmdline):
                continue
            status = (proc / "status").read_text()
        except OSError:
            continue
        count += 1
        total += next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:"))
    return count, total


# ----- main ---------------------------------------------------------------------------------------

def report(floor_serial: list[float], floor_burst: list[float], pod_serial: list[float], pod_burst: list[float],
           rss: dict[str, Any], args: argparse.Namespace, breakdown: dict[str, Phases]) -> None:
    rows = [(f"raw `runc run -d`, one at a time ({len(floor_serial)})", floor_serial, None),
            (f"raw `runc run -d`, {len(floor_burst)} at once", floor_burst, None),
            (f"pod created -> Running+Ready, one at a time ({len(pod_serial)})", pod_serial, floor_serial),
            (f"pod created -> Running+Ready, {len(pod_burst)} at once", pod_burst, floor_burst)]
    print()
    print(f"{'':58} {'p50 ms':>9} {'p99 ms':>9}   ratio to floor (p50 / p99)")
    for label, samples, base in rows:
        p50, p99 = summary(samples)
        ratio = ""
        if base:
            b50, b99 = summary(base)
            ratio = f"   {p50 / b50:5.1f}x / {p99 / b99:5.1f}x"
        print(f"{label:58} {p50:9.1f} {p99:9.1f}{ratio}")
    for mode, parts in breakdown.items():
        print(f"  {mode}: " + ", ".join(f"{k} p50 {summary(v)[0]:.0f} / p99 {summary(v)[1]:.0f} ms"
                                         for k, v in parts.items()))
    print()
    idle, busy = rss["idle"], rss["busy"]
    print(f"agent RSS idle                                          {idle / 1024:7.1f} MiB")
    print(f"agent RSS with {args.pods} pods running                           {busy / 1024:7.1f} MiB"
          f"   (+{(busy - idle) / args.pods:.0f} KiB per pod)")
    print(f"conmon monitors with {args.pods} pods: {rss['conmons']} processes, {rss['conmon_rss'] / 1024:.1f} MiB RSS in all")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pods", type=int, default=50, help="pods (and raw containers) started at once")
    parser.add_argument("--serial", type=int, default=10, help="pods (and raw containers) started one at a time")
    parser.add_argument("--settle", type=float, default=3.0, help="seconds to wait before an RSS sample")
    args = parser.parse_args()
    problems = host_problems()
    if problems:
        print("bench/pods.py cannot run here:\n  - " + "\n  - ".join(problems), file=sys.stderr)
        return 1
    work = Path(tempfile.mkdtemp(prefix="kubelite-bench-pods-"))
    rss: dict[str, Any] = {}
    try:
        with running_node_cluster(work / "cluster", SPEC) as cluster:
            assert cluster.agent is not None
            time.sleep(args.settle)
            rss["idle"] = cluster.agent.rss_kib()
            layers = ImageStore(cluster.paths.images).get(HTTPD_REF).layer_dirs
            floor_serial, floor_burst = asyncio.run(floor(work / "raw", layers, serial=args.serial, burst=args.pods))
            pod_serial, pod_burst, serial_phases, burst_phases = asyncio.run(
                pods(cluster, serial=args.serial, burst=args.pods, namespace="bench"))
            time.sleep(args.settle)
            rss["busy"] = cluster.agent.rss_kib()
            rss["conmons"], rss["conmon_rss"] = conmon_rss_kib(cluster.paths.runtime)
        report(floor_serial, floor_burst, pod_serial, pod_burst, rss, args,
               {"one at a time": serial_phases, f"{args.pods} at once": burst_phases})
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
