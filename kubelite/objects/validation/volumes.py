"""Pod volumes (`ValidateVolumes` and the volume sources a small cluster meets).

Exotic cloud and storage-plugin sources only get the "exactly one source" check; the common ones
(emptyDir, hostPath, secret, configMap, persistentVolumeClaim, projected, downwardAPI, nfs, csi,
ephemeral, image) get their own field checks.
"""

from __future__ import annotations

import posixpath

from kubelite.objects.errors import Cause
from kubelite.objects.validation.access import Obj, as_int, as_map, as_str, maps
from kubelite.objects.validation.fielderr import (
    child,
    duplicate,
    exactly_one,
    forbidden,
    index,
    invalid,
    invalid_each,
    not_found,
    not_supported,
    required,
)
from kubelite.objects.validation.formats import is_dns1123_label
from kubelite.objects.validation.quantity import try_parse

VOLUME_SOURCES = (
    "emptyDir", "hostPath", "gitRepo", "gcePersistentDisk", "awsElasticBlockStore", "secret", "nfs", "iscsi",
    "glusterfs", "flocker", "persistentVolumeClaim", "rbd", "cinder", "cephfs", "quobyte", "downwardAPI", "fc",
    "flexVolume", "configMap", "azureFile", "vsphereVolume", "photonPersistentDisk", "portworxVolume",
    "azureDisk", "storageos", "projected", "scaleIO", "csi", "ephemeral", "image",
)
HOST_PATH_TYPES = ("", "BlockDevice", "CharDevice", "Directory", "DirectoryOrCreate", "File", "FileOrCreate",
                   "Socket")
FILE_MODE_MSG = "must be a number between 0 and 0777 (octal), both inclusive"


def validate_volumes(volumes: list[object], path: str) -> tuple[dict[str, Obj], list[Cause]]:
    """The volumes by name (only the valid ones, as upstream) and the errors."""
    errs: list[Cause] = []
    by_name: dict[str, Obj] = {}
    for i, vol in enumerate(maps(volumes)):
        vpath, name = index(path, i), as_str(vol.get("name"))
        el = _volume_source(vol, vpath)
        if not name:
            el.append(required(child(vpath, "name")))
        else:
            el += invalid_each(child(vpath, "name"), name, is_dns1123_label(name))
        if name in by_name:
            el.append(duplicate(child(vpath, "name"), name))
        if el:
            errs += el
        else:
            by_name[name] = vol
    return by_name, errs


def _volume_source(vol: Obj, path: str) -> list[Cause]:
    return exactly_one(vol, VOLUME_SOURCES, path, "volume type",
                       lambda source, src, where: _SOURCE_CHECKS.get(source, _no_check)(src, where))


def _no_check(src: Obj, path: str) -> list[Cause]:
    return []


def _empty_dir(src: Obj, path: str) -> list[Cause]:
    limit = try_parse(src["sizeLimit"]) if src.get("sizeLimit") is not None else None
    if limit is not None and limit.value < 0:
        return [forbidden(child(path, "sizeLimit"), "SizeLimit field must be a valid resource quantity")]
    return []


def _host_path(src: Obj, path: str) -> list[Cause]:
    host = as_str(src.get("path"))
    if not host:
        return [required(child(path, "path"))]
    errs = no_backsteps(host, child(path, "path"))
    kind = src.get("type")
    if kind is not None and kind not in HOST_PATH_TYPES:
        errs.append(not_supported(child(path, "type"), kind, HOST_PATH_TYPES))
    return errs


def _mode(value: object, path: str) -> list[Cause]:
    mode = as_int(value)
    return [invalid(path, mode, FILE_MODE_MSG)] if mode is not None and not 0 <= mode <= 0o777 else []


def _key_to_paths(items: object, path: str) -> list[Cause]:
    errs: list[Cause] = []
    for i, item in enumerate(maps(items)):
        ipath = index(path, i)
        if not as_str(item.get("key")):
            errs.append(required(child(ipath, "key")))
        if not as_str(item.get("path")):
            errs.append(required(child(ipath, "path")))
        errs += local_non_reserved_path(as_str(item.get("path")), child(ipath, "path"))
        errs += _mode(item.get("mode"), child(ipath, "mode"))
    return errs


def _secret(src: Obj, path: str) -> list[Cause]:
    errs = [] if as_str(src.get("secretName")) else [required(child(path, "secretName"))]
    errs += _mode(src.get("defaultMode"), child(path, "defaultMode"))
    return errs + _key_to_paths(src.get("items"), child(path, "items"))


def _config_map(src: Obj, path: str) -> list[Cause]:
    errs = [] if as_str(src.get("name")) else [required(child(path, "name"))]
    errs += _mode(src.get("defaultMode"), child(path, "defaultMode"))
    return errs + _key_to_paths(src.get("items"), child(path, "items"))


def _pvc(src: Obj, path: str) -> list[Cause]:
    return [] if as_str(src.get("claimName")) else [required(child(path, "claimName"))]


def _nfs(src: Obj, path: str) -> list[Cause]:
    errs = [] if as_str(src.get("server")) else [required(child(path, "server"))]
    nfs_path = as_str(src.get("path"))
    if not nfs_path:
        errs.append(required(child(path, "path")))
    if not nfs_path.startswith("/"):
        errs.append(invalid(child(path, "path"), nfs_path, "must be an absolute path"))
    return errs


def _downward_api(src: Obj, path: str) -> list[Cause]:
    errs = _mode(src.get("defaultMode"), child(path, "defaultMode"))
    for item in maps(src.get("items")):
        if not as_str(item.get("path")):
            errs.append(required(child(path, "path")))
        errs += local_non_reserved_path(as_str(item.get("path")), child(path, "path"))
        errs += _mode(item.get("mode"), child(path, "mode"))
    return errs


def _projected(src: Obj, path: str) -> list[Cause]:
    errs = _mode(src.get("defaultMode"), child(path, "defaultMode"))
    for i, source in enumerate(maps(src.get("sources"))):
        spath = index(child(path, "sources"), i)
        present = [k for k in ("secret", "configMap", "downwardAPI", "serviceAccountToken", "clusterTrustBundle",
                               "podCertificate") if isinstance(source.get(k), dict)]
        for kind in ("secret", "configMap"):
            if kind in present:
                ref = as_map(source[kind])
                if not as_str(ref.get("name")):
                    errs.append(required(child(spath, kind, "name")))
                errs += _key_to_paths(ref.get("items"), child(spath, kind, "items"))
        if "serviceAccountToken" in present:
            errs += _sa_token(as_map(source["serviceAccountToken"]), child(spath, "serviceAccountToken"), path)
        if len(present) > 1:
            errs.append(forbidden(spath, "may not specify more than 1 volume type per source"))
    return errs


def _sa_token(token: Obj, path: str, volume_path: str) -> list[Cause]:
    errs: list[Cause] = []
    seconds = as_int(token.get("expirationSeconds"))
    if seconds is not None and seconds < 600:
        errs.append(invalid(child(path, "expirationSeconds"), seconds, "may not specify a duration less than 10 minutes"))
    if seconds is not None and seconds > 1 << 32:
        errs.append(invalid(child(path, "expirationSeconds"), seconds,
                            "may not specify a duration larger than 2^32 seconds"))
    if not as_str(token.get("path")):
        errs.append(required(child(volume_path, "path")))
    return errs


def _csi(src: Obj, path: str) -> list[Cause]:
    driver = as_str(src.get("driver"))
    errs = [] if driver else [required(child(path, "driver"))]
    return errs


def _ephemeral(src: Obj, path: str) -> list[Cause]:
    return [] if isinstance(src.get("volumeClaimTemplate"), dict) else [required(child(path, "volumeClaimTemplate"))]


_SOURCE_CHECKS = {
    "emptyDir": _empty_dir, "hostPath": _host_path, "secret": _secret, "configMap": _config_map,
    "persistentVolumeClaim": _pvc, "nfs": _nfs, "downwardAPI": _downward_api, "projected": _projected,
    "csi": _csi, "ephemeral": _ephemeral,
}


def no_backsteps(target: str, path: str) -> list[Cause]:
    if ".." in target.replace("\\", "/").split("/"):
        return [invalid(path, target, "must not contain '..'")]
    return []


def local_descending_path(target: str, path: str) -> list[Cause]:
    errs = [invalid(path, target, "must be a relative path")] if posixpath.isabs(target) else []
    return errs + no_backsteps(target, path)


def local_non_reserved_path(target: str, path: str) -> list[Cause]:
    errs = local_descending_path(target, path)
    if target.startswith("..") and not target.startswith("../"):
        errs.append(invalid(path, target, "must not start with '..'"))
    return errs


def validate_mounts(mounts: object, volumes: dict[str, Obj], path: str) -> list[Cause]:
    errs: list[Cause] = []
    seen: set[str] = set()
    for i, mnt in enumerate(maps(mounts)):
        mpath, name, target = index(path, i), as_str(mnt.get("name")), as_str(mnt.get("mountPath"))
        if not name:
            errs.append(required(child(mpath, "name")))
        if name not in volumes:
            errs.append(not_found(child(mpath, "name"), name))
        if not target:
            errs.append(required(child(mpath, "mountPath")))
        if target in seen:
            errs.append(invalid(child(mpath, "mountPath"), target, "must be unique"))
        seen.add(target)
        errs += _mount_details(mnt, path, mpath)
    return errs


def _mount_details(mnt: Obj, path: str, mpath: str) -> list[Cause]:
    # upstream reports the sub-path checks on the list's path, not the item's
    errs: list[Cause] = []
    sub, expr = as_str(mnt.get("subPath")), as_str(mnt.get("subPathExpr"))
    if sub:
        errs += local_descending_path(sub, child(path, "subPath"))
    if expr and sub:
        errs.append(invalid(child(mpath, "subPathExpr"), expr, "subPathExpr and subPath are mutually exclusive"))
    if expr:
        errs += local_descending_path(expr, child(path, "subPathExpr"))
    propagation = mnt.get("mountPropagation")
    if propagation is not None and propagation not in ("Bidirectional", "HostToContainer", "None"):
        errs.append(not_supported(child(path, "mountPropagation"), propagation,
                                  ("Bidirectional", "HostToContainer", "None")))
    return errs
