"""The registry half of `bench/images.py`: push and pull of one 64 MiB image, every pairing of client
(our `kubelite.images.distribution`, skopeo) and registry (our `RegistryServer`, Debian's
docker-registry), in the same run, on loopback.

    <work>/image            the image as an OCI layout (one uncompressed layer of random bytes, so
                            neither side can gain by compression; skopeo keeps it as it is with
                            --preserve-digests)
    <work>/source           our client's store, holding the image (pushes read from it)
    <work>/<registry>-<n>   one registry's storage, fresh for every push + pull pair
    <work>/pulled-<n>       the store or layout a pull writes (removed after the check)

Every push goes to a registry started for it on a free loopback port with empty storage, so no
client can skip a blob the registry (or skopeo's blob-info cache, which remembers registries by
host and port) already knows; after the push the layer must be in the registry's storage, after the
pull in the pulled store or layout, whole. Each timed transfer starts after a `sync`, so none pays
the writeback of the one before. Our registry runs in a child process
(`bench/images.py --serve-registry ROOT`), as docker-registry does, so it never shares an
interpreter with our client; our client runs in this process, through its Python API (the
`kubelite image push/pull` commands add a Python start, measured by the build half). Each round
takes the four pairings in a rotated order. Registries are stopped by PID.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import select
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from bench.images_build import run_command
from bench.images_report import CLIENTS, REGISTRIES, BenchFailure, Transfer, rotations
from bench.start_probes import seconds
from kubelite.images.blobs import hex_of
from kubelite.images.distribution import pull, push
from kubelite.images.store import ImageStore
from kubelite.images.testimages import BuiltImage, LayerBuilder, build_image, write_layout
from tests.integration.registry_helpers import DockerRegistry

IMAGE_BYTES = 64 << 20
LAYOUT_TAG = "big"
SOURCE_REF = "klbi.invalid/bench/big:1"  # the name in our client's store; never contacted
REPOSITORY = "klbi/big:1"
START_TIMEOUT = 20.0
SKOPEO_TIMEOUT = 120.0


def make_image(work: Path) -> tuple[Path, BuiltImage]:
    """The layout at <work>/image and the image; the layer holds one file of random bytes."""
    layer = LayerBuilder().file("random.bin", os.urandom(IMAGE_BYTES)).build()
    image = build_image([layer], gzip_level=None)
    return write_layout(work / "image", {LAYOUT_TAG: image}), image


def layer_of(image: BuiltImage) -> tuple[str, int]:
    digest, data = max(image.blobs.items(), key=lambda item: len(item[1]))
    return digest, len(data)


# ----- our registry, in a child process ------------------------------------------------------------

def serve_registry(root: Path) -> int:
    """The child: serve `root` on 127.0.0.1:<free port>, print the port, stop on SIGTERM/SIGINT."""
    from kubelite.images.registry.server import RegistryServer

    async def serve() -> None:
        server = RegistryServer(root, [("127.0.0.1", 0)])
        await server.start()
        print(server.port, flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        await stop.wait()
        await server.stop()

    with contextlib.suppress(KeyboardInterrupt):  # a Ctrl-C before the handlers are set
        asyncio.run(serve())
    return 0


class OurRegistry(DockerRegistry):
    """Our registry in a child process: started as the child prints its port, stopped by PID as
    docker-registry is (the stop is the same)."""

    def __init__(self, directory: Path, script: Path) -> None:
        super().__init__(directory)
        self.script = script
        self.root = directory / "data"

    def start(self) -> OurRegistry:
        self.directory.mkdir(parents=True)
        with open(self.directory / "registry.log", "wb") as log:
            self.process = subprocess.Popen([sys.executable, str(self.script), "--serve-registry", str(self.root)],
                                            stdout=subprocess.PIPE, stderr=log, stdin=subprocess.DEVNULL)
        assert self.process.stdout is not None
        with self.process.stdout as out:  # the child prints nothing after its port
            ready, _, _ = select.select([out], [], [], START_TIMEOUT)
            port = out.readline().strip().decode() if ready else ""
        if not port.isdigit():
            self.stop()
            raise BenchFailure("our registry did not start:\n" + (self.directory / "registry.log").read_text()[-2000:])
        self.port = int(port)
        return self

    def blob_path(self, digest: str) -> Path:
        return self.root / "blobs" / "sha256" / hex_of(digest)


def docker_registry_blob(registry: DockerRegistry, digest: str) -> Path:
    hexd = hex_of(digest)
    return registry.storage / "docker/registry/v2/blobs/sha256" / hexd[:2] / hexd / "data"


# ----- the bench ---------------------------------------------------------------------------------------

def skopeo_push_argv(layout: Path, host: str) -> list[str]:
    return ["skopeo", "copy", "-q", "--preserve-digests", "--dest-tls-verify=false",
            f"oci:{layout}:{LAYOUT_TAG}", f"docker://{host}/{REPOSITORY}"]


def skopeo_pull_argv(host: str, dest: Path) -> list[str]:
    return ["skopeo", "copy", "-q", "--preserve-digests", "--dest-oci-accept-uncompressed-layers",
            "--src-tls-verify=false", f"docker://{host}/{REPOSITORY}", f"oci:{dest}:{LAYOUT_TAG}"]


class RegistryBench:
    def __init__(self, work: Path, script: Path) -> None:
        self.work, self.script = work, script
        self.served: list[DockerRegistry] = []  # running, to stop on the way out

    def prepare(self) -> None:
        self.layout, self.image = make_image(self.work)
        self.layer, self.layer_size = layer_of(self.image)
        self.size = sum(len(b) for b in self.image.blobs.values())
        self.source = ImageStore(self.work / "source")
        self.source.import_oci_layout(self.layout, ref=SOURCE_REF, ref_name=LAYOUT_TAG)

    @contextlib.contextmanager
    def registry(self, kind: str, n: int) -> Iterator[tuple[str, Path]]:
        """A fresh registry of `kind`: (host, where the layer must land once pushed)."""
        directory = self.work / f"{kind}-{n}"
        served = OurRegistry(directory, self.script) if kind == "kubelite" else DockerRegistry(directory)
        self.served.append(served)
        try:
            served.start()
            blob = served.blob_path(self.layer) if isinstance(served, OurRegistry) else \
                docker_registry_blob(served, self.layer)
            yield served.host, blob
        except AssertionError as e:  # docker-registry did not start (its log is in the message)
            raise BenchFailure(str(e)) from None
        finally:
            served.stop()
            self.served.remove(served)
            shutil.rmtree(directory, ignore_errors=True)

    def push(self, client: str, host: str) -> float:
        if client == "skopeo":
            return self._skopeo(skopeo_push_argv(self.layout, host))
        name = f"{host}/{REPOSITORY}"
        self.source.tag(SOURCE_REF, name)
        try:
            os.sync()  # see round_trip
            began = time.perf_counter()
            result = asyncio.run(push(self.source, name))
            took = time.perf_counter() - began
        finally:
            self.source.remove(name, prune=False)
        if result.uploaded != self.size - len(self.image.blobs[self.image.manifest.digest]):
            raise BenchFailure(f"our push sent {result.uploaded} bytes of blobs, not all of them: the registry "
                               "was not empty")
        return took

    def pull(self, client: str, host: str, n: int) -> tuple[float, float]:
        """(seconds, of which unpacking) of a pull into a fresh store or layout."""
        dest = self.work / f"pulled-{n}"
        try:
            if client == "skopeo":
                took, unpack = self._skopeo(skopeo_pull_argv(host, dest)), 0.0
                landed = dest / "blobs" / "sha256" / hex_of(self.layer)
            else:
                store = ImageStore(dest)
                os.sync()
                began = time.perf_counter()
                asyncio.run(pull(store, f"{host}/{REPOSITORY}"))
                took, unpack = time.perf_counter() - began, store.last_unpack_seconds
                landed = store.blobs.path(self.layer)
            self._check(landed, f"{client}'s pull")
        finally:
            shutil.rmtree(dest, ignore_errors=True)
        return took, unpack

    def round_trip(self, client: str, kind: str, n: int) -> list[Transfer]:
        """Push, then pull. Every timed transfer starts after a `sync`: our store's fsyncs and the
        syncfs that ends an unpack would otherwise also write back what the one before left dirty."""
        with self.registry(kind, n) as (host, blob):
            pushed = self.push(client, host)
            self._check(blob, f"{client}'s push to {kind}")
            pulled, unpack = self.pull(client, host, n)
        return [Transfer(client, kind, "push", pushed), Transfer(client, kind, "pull", pulled, unpack)]

    def run(self, rounds: int) -> tuple[list[Transfer], list[float]]:
        """Every transfer, and `tar -xf` + syncfs of the layer once per round (what unpacking costs)."""
        print(f"registry: {rounds} rounds of push + pull of a {IMAGE_BYTES >> 20} MiB image, "
              f"{len(CLIENTS)} clients x {len(REGISTRIES)} registries", flush=True)
        self.prepare()
        pairs = [(c, r) for c in CLIENTS for r in REGISTRIES]
        transfers: list[Transfer] = []
        tar_x: list[float] = []
        n = 0
        for i, order in enumerate(rotations(pairs, rounds)):
            for client, kind in order:
                n += 1
                done = self.round_trip(client, kind, n)
                transfers += done
                unpacked = f" (unpack {done[1].unpack:.2f}s)" if client == "kubelite" else ""
                print(f"  round {i + 1}/{rounds}: {client} -> {kind}: push {done[0].seconds:.2f}s, "
                      f"pull {done[1].seconds:.2f}s{unpacked}", flush=True)
            tar_x.append(self._tar_x())
        return transfers, tar_x

    def _tar_x(self) -> float:
        """`tar -xf` of the layer and a syncfs, as the store's unpack ends with one (durable snapshots)."""
        dest = self.work / "untar"
        dest.mkdir()
        layer = shlex.quote(str(self.layout / "blobs" / "sha256" / hex_of(self.layer)))
        try:
            return seconds(["sh", "-c", f"tar -xf {layer} -C {shlex.quote(str(dest))} && sync -f {shlex.quote(str(dest))}"])
        finally:
            shutil.rmtree(dest, ignore_errors=True)

    def _skopeo(self, argv: list[str]) -> float:
        os.sync()
        began = time.perf_counter()
        returncode, _, stderr = run_command(argv, timeout=SKOPEO_TIMEOUT)
        took = time.perf_counter() - began
        if returncode != 0:
            raise BenchFailure(f"`{shlex.join(argv)}` failed ({returncode}): {stderr.strip()[-2000:]}")
        return took

    def _check(self, path: Path, what: str) -> None:
        size = path.stat().st_size if path.is_file() else -1
        if size != self.layer_size:
            raise BenchFailure(f"after {what} the layer is {'missing' if size < 0 else f'{size} bytes'} "
                               f"at {path}, not {self.layer_size} bytes")

    def cleanup(self) -> None:
        for served in list(self.served):
            served.stop()
        self.served.clear()
