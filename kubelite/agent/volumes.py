"""Pod volumes on the node: directories the kubelet prepares before a pod's containers start,
and the (host path, container path, readOnly) mounts it hands the runtime.

Layout (as upstream): `<root>/pods/<uid>/volumes/<plugin>/<volume>`, plugin one of
`kubernetes.io~empty-dir` (a directory shared by the pod's containers; `medium: Memory` is a
tmpfs of `sizeLimit` bytes), `~configmap`, `~secret`, `~downward-api`, `~projected` (files
written atomically, see `volumefiles`, refreshed when the kubelet asks, mounted read-only).
`hostPath` volumes are the host's own paths after upstream's type checks (DirectoryOrCreate
creates a directory, FileOrCreate an empty file in an existing directory, the others must
already be what they say).

Setup is idempotent (an agent restart finds its directories and tmpfs mounts in place); teardown
unmounts what it mounted, then removes the pod's directory, never anything outside it. A kubelet
without a root directory (hollow nodes) has no volume manager at all.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import ctypes
import ctypes.util
import errno
import os
import shutil
import stat
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path, PurePosixPath
from typing import Any, Protocol

from kubelite.agent.env import PodFacts, expand
from kubelite.agent.runtime.interface import Mount
from kubelite.agent.volumefiles import (
    DEFAULT_MODE,
    Payload,
    VolumeError,
    downward_payload,
    keys_payload,
    write_atomic,
)
from kubelite.objects.validation.quantity import QuantityError, parse_quantity

Obj = dict[str, Any]
Fetch = Callable[[str, str, str], Awaitable[Obj | None]]  # (configmap|secret, namespace, name) -> object
PLUGINS = {"emptyDir": "kubernetes.io~empty-dir", "configMap": "kubernetes.io~configmap",
           "secret": "kubernetes.io~secret", "downwardAPI": "kubernetes.io~downward-api",
           "projected": "kubernetes.io~projected"}
PROJECTED_KINDS = ("configMap", "secret", "downwardAPI", "projected")  # files the kubelet writes, read-only
SUPPORTED = (*PLUGINS, "hostPath")


class VolumeSetupError(Exception):
    def __init__(self, volume: str, message: str) -> None:
        super().__init__(f'MountVolume.SetUp failed for volume "{volume}" : {message}')
        self.volume = volume


def volume_kind(volume: Obj) -> str:
    return next((k for k in volume if k != "name"), "")


def uses_files(pod: Obj) -> bool:
    """Whether the pod has volumes whose files the kubelet refreshes (configMap, secret, ...)."""
    return any(volume_kind(v) in PROJECTED_KINDS for v in (pod.get("spec") or {}).get("volumes") or [])


# ----- mounting tmpfs ----------------------------------------------------------------------------

class Mounter(Protocol):
    def mount_tmpfs(self, path: Path, size: int | None) -> None: ...

    def unmount(self, path: Path) -> None: ...

    def is_mounted(self, path: Path) -> bool: ...


class SystemMounter:
    """mount(2)/umount2(2) through libc (needs root)."""

    def __init__(self) -> None:
        self._libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)

    def mount_tmpfs(self, path: Path, size: int | None) -> None:
        options = "mode=0777" + (f",size={size}" if size else "")
        if self._libc.mount(b"tmpfs", str(path).encode(), b"tmpfs", 0, options.encode()) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"mount tmpfs on {path}: {os.strerror(err)}")

    def unmount(self, path: Path) -> None:
        if self._libc.umount2(str(path).encode(), 2) != 0:  # MNT_DETACH
            err = ctypes.get_errno()
            if err not in (errno.EINVAL, errno.ENOENT):  # not mounted (any more)
                raise OSError(err, f"umount {path}: {os.strerror(err)}")

    def is_mounted(self, path: Path) -> bool:
        return os.path.ismount(path)


# ----- hostPath ----------------------------------------------------------------------------------

def check_host_path(path: str, kind: str) -> None:
    """upstream's hostPath type check; creates what the *OrCreate types create."""
    p = Path(path)
    if kind == "DirectoryOrCreate" and not p.exists():
        p.mkdir(mode=0o755, parents=True)
    elif kind == "FileOrCreate" and not p.exists():
        try:
            p.touch(mode=0o644)
        except OSError as exc:
            raise VolumeError(f"hostPath type check failed: {exc}") from None
    checks: dict[str, tuple[Callable[[int], bool], str]] = {
        "Directory": (stat.S_ISDIR, "a directory"), "DirectoryOrCreate": (stat.S_ISDIR, "a directory"),
        "File": (stat.S_ISREG, "a file"), "FileOrCreate": (stat.S_ISREG, "a file"),
        "Socket": (stat.S_ISSOCK, "a socket file"), "CharDevice": (stat.S_ISCHR, "a character device"),
        "BlockDevice": (stat.S_ISBLK, "a block device")}
    if not kind:
        return
    if kind not in checks:
        raise VolumeError(f"{kind} is an invalid volume type")
    test, noun = checks[kind]
    try:
        ok = test(os.stat(path).st_mode)
    except OSError:
        ok = False
    if not ok:
        raise VolumeError(f"hostPath type check failed: {path} is not {noun}")


# ----- mounts for a container --------------------------------------------------------------------

def container_mounts(pod: Obj, container: Obj, paths: Mapping[str, str], env: Mapping[str, str]) -> list[Mount]:
    """The runtime mounts of `container` (volumeMounts, subPath/subPathExpr resolved)."""
    kinds = {str(v.get("name")): volume_kind(v) for v in (pod.get("spec") or {}).get("volumes") or []}
    mounts = []
    for vm in container.get("volumeMounts") or []:
        name = str(vm.get("name"))
        if name not in paths:
            raise VolumeError(f'cannot find volume "{name}" to mount into container "{container.get("name")}"')
        host = paths[name]
        sub = str(vm.get("subPath") or "") or expand(str(vm.get("subPathExpr") or ""), env.get)
        if sub:
            pure = PurePosixPath(sub)
            if pure.is_absolute() or ".." in pure.parts:
                raise VolumeError(f"invalid subPath {sub!r}: must be relative and not contain '..'")
            host = os.path.join(host, sub)
            if not os.path.lexists(host):
                os.makedirs(host, mode=0o777, exist_ok=True)
        read_only = bool(vm.get("readOnly")) or kinds.get(name) in PROJECTED_KINDS
        mount = Mount(host, str(vm.get("mountPath")), read_only)
        if vm.get("mountPropagation") in ("HostToContainer", "Bidirectional"):
            mount = Mount(host, mount.container_path, read_only, vm["mountPropagation"])
        mounts.append(mount)
    return mounts


# ----- the manager -------------------------------------------------------------------------------

class VolumeManager:
    def __init__(self, root: Path, fetch: Fetch, *, mounter: Mounter | None = None) -> None:
        self.root = root
        self.fetch = fetch
        self.mounter = mounter or SystemMounter()

    def pod_dir(self, uid: str) -> Path:
        return self.root / "pods" / uid

    def pod_uids(self) -> list[str]:
        base = self.root / "pods"
        return [p.name for p in base.iterdir() if p.is_dir()] if base.is_dir() else []

    async def setup(self, pod: Obj, facts: PodFacts, *, refresh: bool = True) -> dict[str, str]:
        """Host paths by volume name; `refresh`: rewrite file volumes from fresh API reads
        (otherwise only those not written yet). Raises VolumeSetupError."""
        paths: dict[str, str] = {}
        for volume in (pod.get("spec") or {}).get("volumes") or []:
            name, kind = str(volume.get("name")), volume_kind(volume)
            try:
                paths[name] = await self._setup_one(pod, volume, kind, facts, refresh=refresh)
            except (VolumeError, OSError) as exc:
                raise VolumeSetupError(name, str(exc)) from None
        return paths

    async def _setup_one(self, pod: Obj, volume: Obj, kind: str, facts: PodFacts, *, refresh: bool) -> str:
        source = volume.get(kind) or {}
        if kind == "hostPath":
            path = str(source.get("path") or "")
            check_host_path(path, str(source.get("type") or ""))
            return path
        if kind not in PLUGINS:
            raise VolumeError(f"volume type {kind or 'unknown'} is not supported on this node")
        target = self.pod_dir(pod["metadata"]["uid"]) / "volumes" / PLUGINS[kind] / str(volume.get("name"))
        if kind == "emptyDir":
            self._empty_dir(target, source)
        elif refresh or not (target / "..data").is_symlink():
            write_atomic(target, await self._payload(pod, kind, source, facts))
        return str(target)

    def _empty_dir(self, target: Path, source: Obj) -> None:
        if not target.is_dir():
            target.mkdir(parents=True)
            target.chmod(0o777)
        if source.get("medium") == "Memory" and not self.mounter.is_mounted(target):
            size = None
            if source.get("sizeLimit") is not None:
                try:
                    size = int(parse_quantity(source["sizeLimit"]).value)
                except QuantityError as exc:
                    raise VolumeError(f"invalid sizeLimit: {exc}") from None
            self.mounter.mount_tmpfs(target, size)

    async def _payload(self, pod: Obj, kind: str, source: Obj, facts: PodFacts) -> Payload:
        mode = source.get("defaultMode")
        default = mode if isinstance(mode, int) else DEFAULT_MODE
        if kind == "downwardAPI":
            return downward_payload(pod, source.get("items") or [], facts, default_mode=default)
        if kind in ("configMap", "secret"):
            return await self._keys(pod, kind, source, default) or {}
        payload: Payload = {}
        for projection in source.get("sources") or []:
            for sub in ("configMap", "secret"):
                if sub in projection:
                    payload.update(await self._keys(pod, sub, projection[sub], default) or {})
            if "downwardAPI" in projection:
                payload.update(downward_payload(pod, projection["downwardAPI"].get("items") or [], facts,
                                                default_mode=default))
        return payload

    async def _keys(self, pod: Obj, kind: str, source: Obj, default_mode: int) -> Payload | None:
        name = str(source.get("name") or source.get("secretName") or "")
        noun = "configmap" if kind == "configMap" else "secret"
        optional = bool(source.get("optional"))
        obj = await self.fetch(noun, str(pod["metadata"].get("namespace") or ""), name)
        if obj is None:
            if optional:
                return None
            raise VolumeError(f'{noun} "{name}" not found')
        data = _config_map_bytes(obj) if kind == "configMap" else _secret_bytes(obj)
        return keys_payload(noun, data, source.get("items"), default_mode=default_mode, optional=optional)

    async def teardown(self, uid: str) -> None:
        """Unmount the pod's tmpfs volumes and remove its directory."""
        await asyncio.to_thread(self._teardown, uid)

    def _teardown(self, uid: str) -> None:
        base = self.pod_dir(uid)
        empty = base / "volumes" / PLUGINS["emptyDir"]
        if empty.is_dir():
            for volume in empty.iterdir():
                if self.mounter.is_mounted(volume):
                    self.mounter.unmount(volume)
        if any(self.mounter.is_mounted(p) for p in (empty.iterdir() if empty.is_dir() else [])):
            raise OSError(f"volumes of pod {uid} are still mounted")
        shutil.rmtree(base, ignore_errors=True)


def _b64(value: Any) -> bytes:
    try:
        return base64.b64decode(str(value or ""))
    except (binascii.Error, ValueError):
        return b""


def _config_map_bytes(obj: Obj) -> dict[str, bytes]:
    data = {str(k): str(v).encode() for k, v in (obj.get("data") or {}).items()}
    data.update({str(k): _b64(v) for k, v in (obj.get("binaryData") or {}).items()})
    return data


def _secret_bytes(obj: Obj) -> dict[str, bytes]:
    data = {str(k): _b64(v) for k, v in (obj.get("data") or {}).items()}
    data.update({str(k): str(v).encode() for k, v in (obj.get("stringData") or {}).items()})
    return data


__all__ = ["Mounter", "SystemMounter", "VolumeError", "VolumeManager", "VolumeSetupError", "container_mounts",
           "uses_files"]
