"""The build half of `bench/images.py`: cold and warm `kubelite image build` of a 3-step Dockerfile
beside what its steps fundamentally cost, measured in turns in the same run.

    <work>/build/data      a data dir whose store holds the busybox test image (no download)
    <work>/build/context   Dockerfile (FROM busybox / COPY payload / RUN echo) and payload
                           (PAYLOAD_BYTES of random data, so gzip cannot shrink the work)
    <work>/build/floors    the runc bundle and state dir, the tar outputs

One untimed build first fills the layer cache (and the page cache). Then each round runs, in this
order: a cold build (`--no-cache`: every step runs), a warm build (every step cached), and the
floors — `runc run` of busybox `true` (what one RUN's container costs; bench/start_probes.py),
`tar -cf` and `tar -c | gzip -1` of the payload (what its COPY layer costs: the builder writes
layers at gzip level 1), and the CLI's Python start. The builds run as the command a user types,
so the wall time includes that Python start; the builder's own `built in` figure is kept beside it.
A cold build that reports a cached step, or a warm one with a step not cached, stops the bench.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

from bench.images_report import BenchFailure, Built, parse_built
from bench.start_probes import runc_bundle, seconds
from kubelite.images.store import ImageStore, default_root
from kubelite.images.testimages import BUSYBOX_REF, ensure_test_images

PAYLOAD_BYTES = 4 << 20
TAG = "klbi/bench-build:latest"
BUILD_TIMEOUT = 120.0


def dockerfile() -> str:
    return f"FROM {BUSYBOX_REF}\nCOPY payload /payload\nRUN echo built > /built\n"


class BuildBench:
    def __init__(self, work: Path, repo: Path) -> None:
        self.work, self.repo = work, repo
        self.data = work / "data"
        self.context = work / "context"
        self.floors = work / "floors"
        self.runc_root = self.floors / "runc-root"

    def prepare(self) -> None:
        ensure_test_images(ImageStore(default_root(self.data)))
        self.context.mkdir(parents=True)
        (self.context / "Dockerfile").write_text(dockerfile())
        (self.context / "payload").write_bytes(os.urandom(PAYLOAD_BYTES))
        self.floors.mkdir(parents=True)
        self.bundle = runc_bundle(self.floors)

    def build(self, *, no_cache: bool) -> tuple[float, Built]:
        argv = [sys.executable, "-m", "kubelite.cli.main", "image", "build", "--data-dir", str(self.data),
                "-t", TAG, *(["--no-cache"] if no_cache else []), str(self.context)]
        began = time.perf_counter()
        returncode, stdout, stderr = run_command(argv, timeout=BUILD_TIMEOUT, cwd=self.repo)
        wall = time.perf_counter() - began
        if returncode != 0:
            raise BenchFailure(f"`{shlex.join(argv)}` failed ({returncode}):\n{stdout[-2000:]}{stderr[-2000:]}")
        return wall, parse_built(stdout)

    def floor_samples(self, i: int) -> dict[str, float]:
        payload, out = shlex.quote(str(self.context / "payload")), shlex.quote(str(self.floors / "payload.tar"))
        runc = ["runc", "--root", str(self.runc_root), "run", "--bundle", str(self.bundle), f"klbi-floor-{i}"]
        return {
            "runc": seconds(runc),
            # tar skips reading when writing to /dev/null, so it writes a real file
            "tar": seconds(["tar", "-cf", str(self.floors / "payload.tar"), "-C", str(self.context), "payload"]),
            "tar_gzip": seconds(["sh", "-c", f"tar -cf - {payload} | gzip -1 > {out}.gz"]),
            "python_cli": seconds([sys.executable, "-c", "import kubelite.cli.main"], cwd=self.repo),
        }

    def run(self, rounds: int) -> dict[str, list[float]]:
        print(f"build: {rounds} rounds of a cold and a warm build of a 3-step Dockerfile "
              f"({PAYLOAD_BYTES >> 20} MiB copied), with floors", flush=True)
        self.prepare()
        self.build(no_cache=False)  # fills the layer cache the warm builds use (and the bytecode cache)
        seconds([sys.executable, "-c", "import kubelite.cli.main"], cwd=self.repo)
        samples: dict[str, list[float]] = {}
        for i in range(rounds):
            cold, cold_built = self.build(no_cache=True)
            warm, warm_built = self.build(no_cache=False)
            check_cache_use(cold_built, warm_built)
            row = {"cold": cold, "cold_builder": cold_built.seconds, "warm": warm, "warm_builder": warm_built.seconds,
                   **self.floor_samples(i)}
            for key, value in row.items():
                samples.setdefault(key, []).append(value)
            print(f"  round {i + 1}/{rounds}: cold {cold:.2f}s (builder {cold_built.seconds:.2f}s), "
                  f"warm {warm:.2f}s (builder {warm_built.seconds:.2f}s), runc run {row['runc'] * 1000:.0f} ms",
                  flush=True)
        return samples

    def cleanup(self) -> None:
        """Containers of a floor run Ctrl-C cut short (the builds' own clean up after themselves)."""
        if not self.runc_root.is_dir():
            return
        listed = subprocess.run(["runc", "--root", str(self.runc_root), "list", "-q"], capture_output=True, text=True)
        for container in listed.stdout.split():
            subprocess.run(["runc", "--root", str(self.runc_root), "delete", "--force", container],
                           capture_output=True)


def run_command(argv: list[str], *, timeout: float, cwd: Path | None = None) -> tuple[int, str, str]:
    """(exit code, stdout, stderr). Interrupted, the command gets to clean up as after a Ctrl-C of
    its own (a build unmounts its overlay, deletes its container): it has one already when the
    terminal sent it to the whole group, else it is sent SIGINT; SIGKILL only if it hangs."""
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
                            text=True, cwd=cwd)
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except BaseException as e:
        for signum, grace in ((None, 5.0), (signal.SIGINT, 30.0), (signal.SIGKILL, 10.0)):
            if signum is not None and proc.poll() is None:
                os.kill(proc.pid, signum)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.communicate(timeout=grace)
                break
        if isinstance(e, subprocess.TimeoutExpired):
            raise BenchFailure(f"`{shlex.join(argv)}` took over {timeout:.0f}s") from None
        raise
    return proc.returncode, stdout, stderr


def check_cache_use(cold: Built, warm: Built) -> None:
    if cold.cached:
        raise BenchFailure(f"a --no-cache build reported {cold.cached}/{cold.steps} steps cached")
    if warm.cached != warm.steps:
        raise BenchFailure(f"the warm build ran {warm.steps - warm.cached} of {warm.steps} steps: the cache missed")
