"""Files of configMap, secret, downwardAPI and projected volumes: what they contain (pure payload
builders) and how they are written (upstream's AtomicWriter).

A payload maps a relative path to (bytes, mode). `write_atomic` lays it out as upstream does, so
a container never sees a half-updated volume:

    <dir>/..2025_01_01_00_00_00.1234/<files>   the current generation (a fresh dir per change)
    <dir>/..data -> ..2025_01_01_00_00_00.1234  swapped atomically (symlink + rename)
    <dir>/<top-level name> -> ..data/<name>     the user-visible entries

An unchanged payload writes nothing. Errors carry upstream's messages (`VolumeError`), which the
kubelet reports as `MountVolume.SetUp failed for volume "x" : <message>`.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path, PurePosixPath
from typing import Any

from kubelite.agent.env import EnvError, PodFacts, field_value, resource_value

Obj = dict[str, Any]
Payload = dict[str, tuple[bytes, int]]
DATA_DIR = "..data"
DEFAULT_MODE = 0o644


class VolumeError(Exception):
    """A volume cannot be set up now; the message is upstream's."""


# ----- payloads ----------------------------------------------------------------------------------

def _mode(value: Any, default: int) -> int:
    return int(value) if isinstance(value, int) else default


def keys_payload(kind: str, data: Mapping[str, bytes], items: list[Obj] | None, *, default_mode: int,
                 optional: bool) -> Payload:
    """A configMap's or secret's keys as files: every key, or the `items` (key → path, mode)."""
    if not items:
        return {key: (value, default_mode) for key, value in data.items()}
    payload: Payload = {}
    for item in items:
        key = str(item.get("key"))
        if key not in data:
            if optional:
                continue
            noun = "config key" if kind == "configmap" else "secret key"
            raise VolumeError(f"{kind} references non-existent {noun}: {key}")
        payload[str(item.get("path") or key)] = (data[key], _mode(item.get("mode"), default_mode))
    return payload


def go_quote(text: str) -> str:
    """Go's %q for the strings labels and annotations hold."""
    out = ['"']
    for ch in text:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif ch == "\r":
            out.append("\\r")
        elif ord(ch) < 32 or ord(ch) == 127:
            out.append(f"\\x{ord(ch):02x}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def format_map(values: Mapping[str, Any]) -> str:
    """upstream fieldpath.FormatMap: `key="value"` lines, sorted, no trailing newline."""
    return "\n".join(f"{key}={go_quote(str(values[key]))}" for key in sorted(values))


def downward_value(pod: Obj, item: Obj, facts: PodFacts) -> str:
    if "fieldRef" in item:
        path = str((item.get("fieldRef") or {}).get("fieldPath") or "")
        meta = pod.get("metadata") or {}
        if path in ("metadata.labels", "metadata.annotations"):
            return format_map(meta.get(path.split(".", 1)[1]) or {})
        return field_value(pod, path, facts)
    if "resourceFieldRef" in item:
        return resource_value(pod, item.get("resourceFieldRef") or {}, facts)
    raise VolumeError(f"downwardAPI item {item.get('path')!r} has no source")


def downward_payload(pod: Obj, items: list[Obj], facts: PodFacts, *, default_mode: int) -> Payload:
    try:
        return {str(item.get("path")): (downward_value(pod, item, facts).encode(),
                                        _mode(item.get("mode"), default_mode)) for item in items}
    except EnvError as exc:
        raise VolumeError(str(exc)) from None


# ----- the atomic writer -------------------------------------------------------------------------

def _check_path(path: str) -> None:
    pure = PurePosixPath(path)
    if not path or pure.is_absolute() or ".." in pure.parts or path.startswith(".."):
        raise VolumeError(f"invalid path {path!r} in volume payload")


def _current(target: Path) -> Path | None:
    try:
        return target / os.readlink(target / DATA_DIR)
    except OSError:
        return None


def _unchanged(generation: Path, payload: Payload) -> bool:
    files = {str(p.relative_to(generation)) for p in generation.rglob("*") if p.is_file()}
    if files != set(payload):
        return False
    for path, (data, mode) in payload.items():
        file = generation / path
        if file.read_bytes() != data or (file.stat().st_mode & 0o7777) != mode:
            return False
    return True


def _top_level(payload: Payload) -> set[str]:
    return {PurePosixPath(p).parts[0] for p in payload}


def write_atomic(target: Path, payload: Payload) -> bool:
    """Make `target` hold exactly `payload`; False when it already did."""
    for path in payload:
        _check_path(path)
    target.mkdir(parents=True, exist_ok=True)
    old = _current(target)
    visible = _top_level(payload)
    if old is not None and old.is_dir() and _unchanged(old, payload) and \
            all((target / name).is_symlink() for name in visible):
        return False
    generation = Path(tempfile.mkdtemp(prefix=time.strftime("..%Y_%m_%d_%H_%M_%S.", time.gmtime()), dir=target))
    generation.chmod(0o755)
    for path, (data, mode) in payload.items():
        file = generation / path
        file.parent.mkdir(parents=True, exist_ok=True, mode=0o755)
        file.write_bytes(data)
        file.chmod(mode)
    tmp_link = target / f"{DATA_DIR}_tmp"
    tmp_link.unlink(missing_ok=True)
    os.symlink(generation.name, tmp_link)
    os.rename(tmp_link, target / DATA_DIR)
    for name in visible:
        link = target / name
        if not link.is_symlink():
            os.symlink(f"{DATA_DIR}/{name}", link)
    for entry in target.iterdir():
        if not entry.name.startswith("..") and entry.name not in visible and entry.is_symlink():
            entry.unlink()
    if old is not None and old != generation:
        shutil.rmtree(old, ignore_errors=True)
    return True
