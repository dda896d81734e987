"""RUN: one command in a runc container over the stage's layers; the writes become the next layer.

    <scratch>/rootfs   overlay(lowerdir = the stage's layer snapshots, upperdir = upper, workdir = work)
    <scratch>/bundle   config.json (the runc runtime's own spec builder, for a one-container "pod")
    <scratch>/runc     a private runc state directory

The container gets new mount, PID, IPC and UTS namespaces (hostname buildkitsandbox), a new network
namespace with only loopback unless the build asked for the host network, the default mounts
(/proc, /dev, /sys, ...), its own /etc/hosts and /etc/resolv.conf (bind-mounted, never part of the
layer), the image's Env plus build args, User, WorkingDir, and containerd's default capabilities.
Output (stdout and stderr together) streams line by line; `runc run` in the foreground returns the
command's exit code and deletes the container when it ends, and the PID namespace ends every
process the command left behind.

Mount points runc had to create in the rootfs (/proc, /dev, /sys, /etc/hosts, ... when the image
lacks them) are removed again before the overlay is unmounted, as buildkit removes its mount
stubs, so the layer holds only what the command wrote. The overlay runs without redirect_dir,
metacopy and index, so its upper directory is a plain diff: new and changed files whole, deletions
as 0:0 character devices, replaced directories opaque.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from kubelite.agent.runtime.runc import rootfs, spec, system
from kubelite.agent.runtime.runc.process import SpecError

HOSTNAME = "buildkitsandbox"
HOSTS = f"127.0.0.1\tlocalhost {HOSTNAME}\n::1\tlocalhost ip6-localhost ip6-loopback\n"
STUBS = ("etc/resolv.conf", "etc/hostname", "etc/hosts", "etc", "proc", "dev", "sys")  # deepest first
OVERLAY_OPTIONS = "redirect_dir=off,index=off,metacopy=off"
MAX_MOUNT_DATA = 4000  # the kernel takes one page of mount options


class RunError(Exception):
    pass


@dataclass(frozen=True)
class RunRequest:
    layer_dirs: Sequence[Path]  # lowest first
    argv: Sequence[str]
    env: Sequence[str]
    user: str
    workdir: str
    network: str  # "none" | "host" | the path of a network namespace to join
    scratch: Path  # an empty directory the caller removes afterwards
    pipes: dict[str, str] = field(default_factory=dict)  # heredoc scripts, at /dev/pipes/<name> (as buildkit)


def host_problems(runc: str = "runc") -> list[str]:
    problems = []
    if os.geteuid() != 0:
        problems.append("RUN needs root (runc, overlay mounts): run `kubelite image build` as root (sudo)")
    if shutil.which(runc) is None:
        problems.append(f"{runc} not found: apt-get install runc")
    return problems


def run(req: RunRequest, output: Callable[[str], None], *, runc: str = "runc") -> tuple[int, Path]:
    """Run the command; returns its exit code and the overlay's upper directory (the diff)."""
    merged, upper, work = (req.scratch / d for d in ("rootfs", "upper", "work"))
    for d in (merged, upper, work, req.scratch / "empty"):
        d.mkdir(parents=True, exist_ok=True)
    lower = ":".join(str(d) for d in reversed(req.layer_dirs)) or str(req.scratch / "empty")
    options = f"lowerdir={lower},upperdir={upper},workdir={work},{OVERLAY_OPTIONS}"
    if len(options) > MAX_MOUNT_DATA:
        raise RunError(f"the stage has too many layers ({len(req.layer_dirs)}) for one overlay mount; "
                       "combine RUN/COPY steps")
    try:
        system.mount("overlay", merged, "overlay", data=options)
    except OSError as e:
        raise RunError(f"mounting the build's overlay: {e}") from None
    try:
        stubs = [s for s in STUBS if not os.path.lexists(merged / s)]
        bundle = _bundle(req, merged)
        code = _runc_run(runc, bundle, req.scratch / "runc", output)
        _remove_stubs(merged, stubs)
    finally:
        system.umount(merged)
    return code, upper


def _bundle(req: RunRequest, merged: Path) -> Path:
    files = req.scratch / "files"
    files.mkdir(exist_ok=True)
    (files / "hosts").write_text(HOSTS)
    (files / "hostname").write_text(HOSTNAME + "\n")
    resolv = ""
    with contextlib.suppress(OSError):
        resolv = Path("/etc/resolv.conf").read_text() if req.network == "host" else ""
    (files / "resolv.conf").write_text(resolv)
    ctx = spec.PodContext(
        pod={"metadata": {"name": "build"}, "spec": {}}, hostname=HOSTNAME, netns_path=None, ipc_path=None,
        uts_path=None, hosts_path=str(files / "hosts"), hostname_path=str(files / "hostname"),
        resolv_path=str(files / "resolv.conf"), shm_path=None, cgroup_parent="")
    image_config = {"Cmd": list(req.argv), "Env": list(req.env), "User": req.user, "WorkingDir": req.workdir}
    inputs = spec.ContainerInputs(
        container={"name": "build"}, container_id="build", image_config=image_config, rootfs=str(merged),
        passwd=rootfs.read_text(merged, "etc/passwd"), group=rootfs.read_text(merged, "etc/group"),
        available_caps=system.available_caps())
    try:
        config = spec.build_spec(ctx, inputs)
    except SpecError as e:
        raise RunError(str(e)) from None
    # a build step is no pod member: its own namespaces, no cgroup below a pod, no pod annotations
    config["linux"]["namespaces"] = [{"type": t} for t in ("mount", "pid", "ipc", "uts")] + _network(req.network)
    config["linux"].pop("cgroupsPath", None)
    config["linux"]["resources"].pop("cpu", None)  # a pod without requests gets 2 CPU shares; a build is no pod
    config["annotations"] = {}
    if req.pipes:  # below /dev, a tmpfs of the container: never part of the layer
        pipes = req.scratch / "pipes"
        pipes.mkdir()
        for name, text in req.pipes.items():
            (pipes / name).write_text(text)
            (pipes / name).chmod(0o755)
        config["mounts"].append({"destination": "/dev/pipes", "type": "bind", "source": str(pipes),
                                 "options": ["rbind", "ro"]})
    bundle = req.scratch / "bundle"
    bundle.mkdir(exist_ok=True)
    (bundle / "config.json").write_text(json.dumps(config))
    return bundle


def _network(network: str) -> list[dict[str, str]]:
    if network == "host":
        return []
    if network.startswith("/"):  # a network namespace to join (e.g. /var/run/netns/NAME)
        return [{"type": "network", "path": network}]
    return [{"type": "network"}]


def _runc_run(runc: str, bundle: Path, state: Path, output: Callable[[str], None]) -> int:
    container = f"kubelite-build-{uuid.uuid4().hex[:16]}"
    argv = [runc, "--root", str(state), "run", "--bundle", str(bundle), container]
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    assert proc.stdout is not None
    try:
        for raw in proc.stdout:
            output(raw.decode("utf-8", "replace").rstrip("\r\n"))
        return proc.wait()
    finally:
        if proc.poll() is None:  # interrupted: the container goes with us
            subprocess.run([runc, "--root", str(state), "kill", container, "KILL"], capture_output=True)
            proc.kill()
            proc.wait()
        subprocess.run([runc, "--root", str(state), "delete", "--force", container], capture_output=True)


def _remove_stubs(merged: Path, stubs: list[str]) -> None:
    for stub in stubs:  # deepest first
        path = merged / stub
        with contextlib.suppress(OSError):  # kept when the command put something there
            if path.is_dir() and not path.is_symlink():
                path.rmdir()
            elif path.is_file() and path.stat().st_size == 0:
                path.unlink()
