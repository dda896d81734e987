"""Images benchmark (root): `kubelite image build` cold and warm, and push/pull throughput through
our registry with our client beside skopeo and Debian's docker-registry, all in one run.

    sudo python bench/images.py [--build-rounds 5] [--registry-rounds 3] [--no-build] [--no-registry]

1. Build (bench/images_build.py): a 3-step Dockerfile (FROM the busybox test image, COPY a 4 MiB
   file, RUN echo) built with `--no-cache` (cold: every step runs) and again from the layer cache
   (warm), as the `kubelite image build` command a user types; median of N rounds. Beside it, in
   the same rounds: `runc run` of busybox (what one RUN fundamentally costs), `tar` and
   `tar | gzip -1` of the copied file (what its layer costs), and the CLI's Python start.
2. Registry (bench/images_registry.py): a 64 MiB image (one incompressible, uncompressed layer)
   pushed and pulled by each client (ours in-process, skopeo) against each registry (ours in a
   child process, docker-registry), a fresh registry for every push + pull, a fresh store or OCI
   layout for every pull; median of 3 rounds, pairings rotated so noise spreads. MB/s and the
   ratios ours/theirs: whole stack, registry alone (both driven by skopeo), client alone.

Tables print as Markdown for docs/performance.md. Everything lives in one temp dir (removed on exit,
Ctrl-C and SIGTERM included, after the registries are stopped by PID and any mount under it is
gone); only loopback is used. The bench waits for other sessions' e2e tests to end first (they
would share the 2 cores), unless told not to.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.images_report import (  # noqa: E402
    BenchFailure,
    build_ratios,
    build_table,
    registry_ratios,
    registry_table,
    unpack_line,
)

REPO = Path(__file__).resolve().parent.parent
TOOLS = {"runc": "runc", "skopeo": "skopeo", "docker-registry": "docker-registry", "tar": "tar", "gzip": "gzip",
         "sync": "coreutils", "busybox": "busybox-static"}


def preflight() -> str | None:
    if os.geteuid() != 0:
        return "bench/images.py needs root (RUN steps run under runc over overlay mounts): run it with sudo"
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    if missing:
        return (f"missing {', '.join(missing)}: apt-get install -y "
                + " ".join(sorted({TOOLS[t] for t in missing})))
    return None


@contextlib.contextmanager
def held_signals() -> Iterator[None]:
    """Ctrl-C and SIGTERM wait while cleaning up, so a second one cannot leave half of it."""
    old = {s: signal.signal(s, signal.SIG_IGN) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for signum, handler in old.items():
            signal.signal(signum, handler)


@contextlib.contextmanager
def work_dir() -> Iterator[Path]:
    work = Path(tempfile.mkdtemp(prefix="klbi-bench-"))
    try:
        yield work
    finally:
        with held_signals():
            from kubelite.agent.runtime.runc.rootfs import unmount_all

            with contextlib.suppress(OSError, RuntimeError):
                unmount_all(work)  # a build cut short between mount and unmount
            shutil.rmtree(work, ignore_errors=True)


def bytecode_cache(work: Path) -> None:
    """Give the Python commands this bench starts a bytecode cache (in the work dir), as an installed
    package has: with PYTHONDONTWRITEBYTECODE set (as on the project's VMs) every command would
    compile kubelite from source first, which is no user's case."""
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    os.environ["PYTHONPYCACHEPREFIX"] = str(work / "pycache")


def bench(work: Path, args: argparse.Namespace) -> list[str]:
    from bench.images_build import PAYLOAD_BYTES, BuildBench
    from bench.images_registry import RegistryBench

    bytecode_cache(work)
    out: list[str] = []
    if not args.no_build:
        builder = BuildBench(work / "build", REPO)
        try:
            samples = builder.run(args.build_rounds)
        finally:
            with held_signals():
                builder.cleanup()
        out += [f"### Build, median of {args.build_rounds} rounds ({PAYLOAD_BYTES >> 20} MiB copied)", "",
                *build_table(samples), "", *build_ratios(samples), ""]
    if not args.no_registry:
        registries = RegistryBench(work / "registry", Path(__file__).resolve())
        try:
            transfers, tar_x = registries.run(args.registry_rounds)
        finally:
            with held_signals():
                registries.cleanup()
        out += [f"### Push and pull, median of {args.registry_rounds} rounds", "",
                *registry_table(transfers, registries.size), "",
                "Throughput ratios ours/theirs (1.00 = a tie, below 1 = ours slower):", "",
                *registry_ratios(transfers, registries.size), *unpack_line(transfers, tar_x, registries.size), ""]
    return out


def _interrupt(_signum: int, _frame: Any) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--serve-registry"] and len(argv) == 2:
        from bench.images_registry import serve_registry

        return serve_registry(Path(argv[1]))
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--build-rounds", type=int, default=5, help="cold + warm builds (default 5)")
    parser.add_argument("--registry-rounds", type=int, default=3, help="rounds of every client x registry (default 3)")
    parser.add_argument("--no-build", action="store_true", help="skip the build figures")
    parser.add_argument("--no-registry", action="store_true", help="skip the push/pull figures")
    parser.add_argument("--no-wait", action="store_true", help="do not wait for other e2e tests to end")
    args = parser.parse_args(argv)
    if not 1 <= args.build_rounds <= 50 or not 1 <= args.registry_rounds <= 20:
        parser.error("bounds: --build-rounds 1..50, --registry-rounds 1..20")
    problem = preflight()
    if problem:
        print(problem, file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, _interrupt)  # SIGTERM unwinds like Ctrl-C, through every finally
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even when started with SIGINT ignored (`&`)
    from bench.start import wait_for_other_e2e
    from bench.start_cluster import BenchError

    try:
        if not args.no_wait:
            wait_for_other_e2e(600.0)
        began = time.monotonic()
        with work_dir() as work:
            lines = bench(work, args)
    except KeyboardInterrupt:
        print("\ninterrupted; cleaned up", file=sys.stderr)
        return 130
    except (BenchFailure, BenchError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print("\n" + "\n".join(lines))
    print(f"whole bench: {time.monotonic() - began:.0f} s (load average now {os.getloadavg()[0]:.1f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
