"""Helpers for the runc runtime's e2e tests: a busybox rootfs served by a stub image store, pod and
container builders, and a census of everything a pod can leave behind on the host."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from kubelite.agent.runtime.runc import RuncConfig
from kubelite.agent.runtime.runc import cgroups as runc_cgroups
from kubelite.agent.runtime.runc.cni import CniSettings
from kubelite.agent.runtime.runc.rootfs import mounts_under
from kubelite.agent.runtime.runc.sandbox import SandboxSettings
from kubelite.images.api import ImageNotFound, ImageRecord

Obj = dict[str, Any]
TOOLS = ("runc", "conmon", "ip", "unshare", "setsid", "curl", "iptables-save")
BUSYBOX = Path("/bin/busybox")
PASSWD = ("root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\n"
          "nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n")
GROUP = "root:x:0:\napp:x:1000:\nextra:x:2000:app\nnogroup:x:65534:\n"
CGI_ID = '#!/bin/sh\necho "Content-Type: text/plain"\necho\nhostname\n'


def require_host() -> None:
    """Fail (never skip) with what to do when the host cannot run these tests."""
    if os.geteuid() != 0:
        pytest.fail("the runc runtime e2e tests need root (CI runs them as root via scripts/test)")
    missing = [t for t in TOOLS if shutil.which(t) is None]
    if not BUSYBOX.exists():
        missing.append(str(BUSYBOX))
    cni = CniSettings().missing_plugins()
    if missing or cni:
        pytest.fail(f"missing {', '.join(missing + cni)}: apt-get install runc conmon containernetworking-plugins "
                    "iproute2 util-linux busybox-static curl")


def build_rootfs(path: Path) -> Path:
    """A busybox-static image root: every applet linked, a passwd/group, a web root with a CGI
    script that prints the hostname."""
    for sub in ("bin", "proc", "sys", "dev", "tmp", "etc", "www/cgi-bin", "home/app"):
        (path / sub).mkdir(parents=True, exist_ok=True)
    shutil.copy2(BUSYBOX, path / "bin/busybox")
    applets = subprocess.run([str(BUSYBOX), "--list"], capture_output=True, text=True, check=True).stdout.split()
    for applet in applets:
        if applet != "busybox" and not (path / "bin" / applet).exists():
            (path / "bin" / applet).symlink_to("busybox")
    (path / "etc/passwd").write_text(PASSWD)
    (path / "etc/group").write_text(GROUP)
    (path / "www/index.html").write_text("hello-from-pod\n")
    (path / "www/cgi-bin/id").write_text(CGI_ID)
    (path / "www/cgi-bin/id").chmod(0o755)
    (path / "tmp").chmod(0o1777)
    return path


class StubImages:
    """An ImageStoreAPI that knows one image: the busybox rootfs as a single layer."""

    def __init__(self, rootfs: Path) -> None:
        self.record = ImageRecord(reference="docker.io/library/busybox:latest", id="sha256:" + "1" * 64,
                                  digest="sha256:" + "2" * 64,
                                  config={"config": {"Cmd": ["sh"], "Env": ["PATH=/bin", "IMAGE_VAR=from-image"]}},
                                  layer_dirs=(rootfs,), size=1)

    def get(self, reference: str) -> ImageRecord:
        if reference not in ("busybox", "busybox:latest", self.record.reference):
            raise ImageNotFound(reference)
        return self.record

    def list(self) -> list[ImageRecord]:
        return [self.record]


def runc_config(root: Path, *, bridge: str, network: str, prefix: str) -> RuncConfig:
    return RuncConfig(root=root, cni=CniSettings(network=network, bridge=bridge),
                      sandbox=SandboxSettings(netns_prefix=prefix, cgroup_parent=f"{prefix}-e2e",
                                              cluster_dns=("198.19.0.10",)))


def pod(name: str, *containers: Obj, init: tuple[Obj, ...] = (), **spec: Any) -> Obj:
    body: Obj = {"containers": list(containers), **spec}
    if init:
        body["initContainers"] = list(init)
    return {"metadata": {"name": name, "namespace": "e2e", "uid": str(uuid.uuid4())}, "spec": body}


def ctr(name: str, *command: str, **extra: Any) -> Obj:
    return {"name": name, "image": "busybox", "command": list(command), **extra}


def uid(p: Obj) -> str:
    return str(p["metadata"]["uid"])


async def wait_for(check: Callable[[], Any], *, timeout: float = 10.0, interval: float = 0.02) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        await asyncio.sleep(interval)


def _netns_names(prefix: str) -> list[str]:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    return [line.split()[0] for line in out.splitlines() if line.startswith(f"{prefix}-")]


def _processes_mentioning(text: str) -> list[str]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            try:
                cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if text in cmdline:
                found.append(f"{entry.name}: {cmdline[:120]}")
    return found


def leftovers(config: RuncConfig) -> dict[str, list[str]]:
    """Everything pods of this runtime could leave behind, by kind (empty lists when clean)."""
    root, prefix = config.root, config.sandbox.netns_prefix
    bridge_ports = Path(f"/sys/class/net/{config.cni.bridge}/brif")
    ipam = root / "cni/ipam" / config.cni.network
    runc_list = subprocess.run(["runc", "--root", str(root / "runc"), "list", "-q"], capture_output=True,
                               text=True).stdout.split()
    parent = config.sandbox.cgroup_parent
    nat = subprocess.run(["iptables-save", "-t", "nat"], capture_output=True, text=True).stdout
    hostports = [line for line in nat.splitlines() if f'dnat name: \\"{config.cni.network}\\"' in line]
    return {
        "netns": _netns_names(prefix),
        "veth": sorted(p.name for p in bridge_ports.iterdir()) if bridge_ports.exists() else [],
        "mounts": mounts_under(root),
        "cgroups": [str(d / parent) for d in runc_cgroups.own_dirs() if (d / parent).exists()],
        "runc": runc_list,
        "processes": _processes_mentioning(str(root)),
        "ip allocations": sorted(p.name for p in ipam.iterdir() if p.name not in ("last_reserved_ip.0", "lock"))
        if ipam.exists() else [],
        "hostport rules": hostports,
        "records": sorted(p.name for p in (root / "sandboxes").glob("*.json")),
        "exit files": sorted(p.name for p in (root / "exits").iterdir()) if (root / "exits").exists() else [],
        "exec pid files": sorted(p.name for p in (root / "exec").iterdir()) if (root / "exec").exists() else [],
        "bundles": sorted(p.name for p in (root / "containers").iterdir()) if (root / "containers").exists() else [],
    }


async def assert_clean(config: RuncConfig, *, timeout: float = 5.0) -> None:
    """Wait (veth peers die asynchronously after their namespace) until nothing is left."""
    deadline = time.monotonic() + timeout
    while True:
        left = {k: v for k, v in leftovers(config).items() if v}
        if not left:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"left behind: {left}")
        await asyncio.sleep(0.1)


def delete_bridge(name: str) -> None:
    subprocess.run(["ip", "link", "delete", name], capture_output=True)
