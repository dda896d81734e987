"""Volumes: file projection (payloads, the atomic ..data swap), emptyDir (tmpfs through a fake
mounter), hostPath type checks, mounts for a container; all in a temporary directory."""

from __future__ import annotations

import base64
import os
import socket
from pathlib import Path
from typing import Any

import pytest

from kubelite.agent.env import PodFacts
from kubelite.agent.volumefiles import VolumeError, format_map, keys_payload, write_atomic
from kubelite.agent.volumes import VolumeManager, VolumeSetupError, check_host_path, container_mounts

Obj = dict[str, Any]
FACTS = PodFacts(pod_ips=("198.18.0.5",), host_ip="198.19.128.16", node_allocatable={"cpu": "4", "memory": "16Gi"})


class FakeMounter:
    def __init__(self) -> None:
        self.mounted: dict[Path, int | None] = {}

    def mount_tmpfs(self, path: Path, size: int | None) -> None:
        self.mounted[path] = size

    def unmount(self, path: Path) -> None:
        self.mounted.pop(path, None)

    def is_mounted(self, path: Path) -> bool:
        return path in self.mounted


def listing(target: Path) -> dict[str, str]:
    return {p.name: os.readlink(p) if p.is_symlink() else "dir" for p in target.iterdir()}


def test_atomic_writer_swaps_generations(tmp_path: Path) -> None:
    target = tmp_path / "vol"
    assert write_atomic(target, {"a": (b"1", 0o644), "dir/b": (b"2", 0o600)})
    first = os.readlink(target / "..data")
    assert listing(target) == {"..data": first, first: "dir", "a": "..data/a", "dir": "..data/dir"}
    assert (target / "dir" / "b").read_bytes() == b"2" and (target / "dir" / "b").stat().st_mode & 0o777 == 0o600
    assert not write_atomic(target, {"a": (b"1", 0o644), "dir/b": (b"2", 0o600)})  # unchanged: nothing written
    assert write_atomic(target, {"a": (b"changed", 0o644)})
    second = os.readlink(target / "..data")
    assert second != first and not (target / first).exists()
    assert listing(target) == {"..data": second, second: "dir", "a": "..data/a"}
    assert (target / "a").read_text() == "changed"
    with pytest.raises(VolumeError):
        write_atomic(target, {"../escape": (b"x", 0o644)})


def test_key_payloads_items_modes_and_missing_keys() -> None:
    data = {"k1": b"v1", "k2": b"v2"}
    assert keys_payload("configmap", data, None, default_mode=0o644, optional=False) == {
        "k1": (b"v1", 0o644), "k2": (b"v2", 0o644)}
    items = [{"key": "k1", "path": "sub/one"}, {"key": "k2", "path": "two", "mode": 0o400}]
    assert keys_payload("configmap", data, items, default_mode=0o644, optional=False) == {
        "sub/one": (b"v1", 0o644), "two": (b"v2", 0o400)}
    with pytest.raises(VolumeError, match="configmap references non-existent config key: nope"):
        keys_payload("configmap", data, [{"key": "nope", "path": "x"}], default_mode=0o644, optional=False)
    assert keys_payload("secret", data, [{"key": "nope", "path": "x"}], default_mode=0o644, optional=True) == {}


def test_format_map_quotes_like_go() -> None:
    assert format_map({"b": 'say "hi"\n', "a": "x"}) == 'a="x"\nb="say \\"hi\\"\\n"'


def pod(volumes: list[Obj], **meta: Any) -> Obj:
    return {"metadata": {"name": "web", "namespace": "ns", "uid": "u1", "labels": {"app": "web", "tier": "fe"},
                         **meta},
            "spec": {"volumes": volumes, "containers": [{"name": "app", "resources": {"limits": {"memory": "32Mi"}}}]}}


def manager(tmp_path: Path, objects: dict[tuple[str, str], Obj]) -> tuple[VolumeManager, FakeMounter]:
    async def fetch(kind: str, namespace: str, name: str) -> Obj | None:
        assert namespace == "ns"
        return objects.get((kind, name))
    mounter = FakeMounter()
    return VolumeManager(tmp_path / "kubelet", fetch, mounter=mounter), mounter


async def test_setup_and_teardown_of_every_kind(tmp_path: Path) -> None:
    objects = {("configmap", "cfg"): {"data": {"game.properties": "lives=3"},
                                      "binaryData": {"bin": base64.b64encode(b"\x00\x01").decode()}},
               ("secret", "sec"): {"data": {"password": base64.b64encode(b"s3cret").decode()}}}
    volumes = [
        {"name": "scratch", "emptyDir": {}},
        {"name": "mem", "emptyDir": {"medium": "Memory", "sizeLimit": "64Mi"}},
        {"name": "cfg", "configMap": {"name": "cfg", "defaultMode": 0o640}},
        {"name": "sec", "secret": {"secretName": "sec", "items": [{"key": "password", "path": "pw"}]}},
        {"name": "info", "downwardAPI": {"items": [
            {"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}},
            {"path": "name", "fieldRef": {"fieldPath": "metadata.name"}},
            {"path": "mem", "resourceFieldRef": {"containerName": "app", "resource": "limits.memory",
                                                 "divisor": "1Mi"}}]}},
        {"name": "all", "projected": {"sources": [
            {"configMap": {"name": "cfg", "items": [{"key": "game.properties", "path": "game"}]}},
            {"secret": {"name": "sec"}},
            {"downwardAPI": {"items": [{"path": "ns", "fieldRef": {"fieldPath": "metadata.namespace"}}]}}]}},
        {"name": "host", "hostPath": {"path": str(tmp_path / "made"), "type": "DirectoryOrCreate"}},
    ]
    vm, mounter = manager(tmp_path, objects)
    paths = await vm.setup(pod(volumes), FACTS)
    base = tmp_path / "kubelet" / "pods" / "u1" / "volumes"
    assert paths["scratch"] == str(base / "kubernetes.io~empty-dir" / "scratch")
    assert Path(paths["scratch"]).stat().st_mode & 0o777 == 0o777
    assert mounter.mounted == {base / "kubernetes.io~empty-dir" / "mem": 64 * 1024 * 1024}
    cfg = Path(paths["cfg"])
    assert (cfg / "game.properties").read_text() == "lives=3" and (cfg / "bin").read_bytes() == b"\x00\x01"
    assert (cfg / "game.properties").stat().st_mode & 0o777 == 0o640
    assert (Path(paths["sec"]) / "pw").read_text() == "s3cret" and not (Path(paths["sec"]) / "password").exists()
    info = Path(paths["info"])
    assert (info / "labels").read_text() == 'app="web"\ntier="fe"'
    assert (info / "name").read_text() == "web" and (info / "mem").read_text() == "32"
    projected = Path(paths["all"])
    assert sorted(p.name for p in projected.iterdir() if not p.name.startswith("..")) == ["game", "ns", "password"]
    assert paths["host"] == str(tmp_path / "made") and (tmp_path / "made").is_dir()

    objects[("configmap", "cfg")] = {"data": {"game.properties": "lives=4"}}
    await vm.setup(pod(volumes), FACTS)  # a refresh picks the new data up
    assert (cfg / "game.properties").read_text() == "lives=4" and not (cfg / "bin").exists()

    await vm.teardown("u1")
    assert not (tmp_path / "kubelet" / "pods" / "u1").exists() and mounter.mounted == {}
    assert (tmp_path / "made").is_dir()  # hostPath volumes are the host's


async def test_missing_objects_fail_unless_optional(tmp_path: Path) -> None:
    vm, _ = manager(tmp_path, {})
    with pytest.raises(VolumeSetupError, match='MountVolume.SetUp failed for volume "cfg" : configmap "cfg" not found'):
        await vm.setup(pod([{"name": "cfg", "configMap": {"name": "cfg"}}]), FACTS)
    paths = await vm.setup(pod([{"name": "cfg", "configMap": {"name": "cfg", "optional": True}}]), FACTS)
    assert [p.name for p in Path(paths["cfg"]).iterdir()] != []  # an empty generation, ..data in place
    with pytest.raises(VolumeSetupError, match="not supported"):
        await vm.setup(pod([{"name": "claim", "persistentVolumeClaim": {"claimName": "c"}}]), FACTS)


def test_host_path_type_checks(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    check_host_path(str(tmp_path), "Directory")
    check_host_path(str(tmp_path / "file"), "File")
    check_host_path(str(tmp_path / "nosuch"), "")
    with pytest.raises(VolumeError, match=f"hostPath type check failed: {tmp_path / 'file'} is not a directory"):
        check_host_path(str(tmp_path / "file"), "Directory")
    with pytest.raises(VolumeError, match="is not a file"):
        check_host_path(str(tmp_path / "nosuch"), "File")
    check_host_path(str(tmp_path / "new"), "FileOrCreate")
    assert (tmp_path / "new").is_file()
    with pytest.raises(VolumeError):
        check_host_path(str(tmp_path / "no" / "parent"), "FileOrCreate")
    sock = socket.socket(socket.AF_UNIX)
    try:
        sock.bind(str(tmp_path / "s"))
        check_host_path(str(tmp_path / "s"), "Socket")
    finally:
        sock.close()
    with pytest.raises(VolumeError, match="is not a block device"):
        check_host_path(str(tmp_path), "BlockDevice")
    with pytest.raises(VolumeError, match="invalid volume type"):
        check_host_path(str(tmp_path), "Weird")


def test_container_mounts(tmp_path: Path) -> None:
    p = pod([{"name": "data", "emptyDir": {}}, {"name": "cfg", "configMap": {"name": "c"}}])
    paths = {"data": str(tmp_path / "data"), "cfg": str(tmp_path / "cfg")}
    container = {"name": "app", "volumeMounts": [
        {"name": "data", "mountPath": "/data"}, {"name": "cfg", "mountPath": "/etc/cfg"},
        {"name": "data", "mountPath": "/logs", "subPathExpr": "logs/$(POD)", "mountPropagation": "HostToContainer"},
        {"name": "data", "mountPath": "/ro", "readOnly": True, "subPath": "ro"}]}
    mounts = container_mounts(p, container, paths, {"POD": "web"})
    assert [(m.host_path, m.container_path, m.read_only, m.propagation) for m in mounts] == [
        (str(tmp_path / "data"), "/data", False, "None"), (str(tmp_path / "cfg"), "/etc/cfg", True, "None"),
        (str(tmp_path / "data" / "logs" / "web"), "/logs", False, "HostToContainer"),
        (str(tmp_path / "data" / "ro"), "/ro", True, "None")]
    assert (tmp_path / "data" / "logs" / "web").is_dir()
    with pytest.raises(VolumeError):
        container_mounts(p, {"name": "app", "volumeMounts": [{"name": "data", "mountPath": "/x", "subPath": "../up"}]},
                         paths, {})
