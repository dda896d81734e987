"""A build stage's state and what metadata instructions do to it (pure).

`StageState` is what one stage has built so far: the image config's `config` section (Env, Cmd,
Entrypoint, WorkingDir, User, ExposedPorts, Volumes, Labels, Shell, StopSignal, Healthcheck,
OnBuild), the history, the layers (blobs; the builder unpacks them as the store's snapshots), the cache chain
key, and the ARGs in scope. `apply_metadata` changes the config for ENV, LABEL, WORKDIR, USER,
EXPOSE, CMD, ENTRYPOINT, VOLUME, SHELL, STOPSIGNAL, HEALTHCHECK, ONBUILD and MAINTAINER with
arguments already substituted, as buildkit's dispatcher does (ENTRYPOINT clears a CMD inherited
from the base image; shell forms run through SHELL, default `/bin/sh -c`); each returns the
history text (`created_by`).
"""

from __future__ import annotations

import copy
import json
import posixpath
import re
import signal
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kubelite.images.build.tarlayer import LayerBlob

Obj = dict[str, Any]
DEFAULT_SHELL = ["/bin/sh", "-c"]
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
HISTORY_COMMENT = "buildkit.dockerfile.v0"
_PORT = re.compile(r"^(\d+)(?:-(\d+))?(?:/(tcp|udp|sctp))?$", re.IGNORECASE)


class MetadataError(ValueError):
    pass


@dataclass(frozen=True)
class Layer:
    blob: LayerBlob
    path: Path  # where the blob is (the build cache, or the store for a base image's layers)


@dataclass
class StageState:
    label: str
    config: Obj = field(default_factory=dict)
    history: list[Obj] = field(default_factory=list)
    layers: list[Layer] = field(default_factory=list)
    chain: str = ""
    args: dict[str, str] = field(default_factory=dict)  # ARGs declared in this stage, with values
    created: str = ""
    author: str = ""
    cmd_set: bool = False  # CMD given in this stage (ENTRYPOINT keeps it then)
    base_name: str = ""

    def env(self) -> dict[str, str]:
        """What `$VAR` means now: the stage's ARGs, overridden by ENV (and the base image's Env)."""
        out = dict(self.args)
        for item in self.config.get("Env") or []:
            key, _, value = str(item).partition("=")
            out[key] = value
        return out

    def run_env(self) -> list[str]:
        """RUN's environment: the image Env, plus the ARGs ENV does not override."""
        env = list(self.config.get("Env") or [])
        names = {str(e).partition("=")[0] for e in env}
        return [f"{k}={v}" for k, v in self.args.items() if k not in names] + env

    @property
    def shell(self) -> list[str]:
        return list(self.config.get("Shell") or DEFAULT_SHELL)

    @property
    def workdir(self) -> str:
        return str(self.config.get("WorkingDir") or "/")

    def copy(self, label: str) -> StageState:
        state = copy.deepcopy(self)
        state.label, state.args, state.cmd_set = label, {}, False
        return state

    def add_history(self, created_by: str, created: str, *, empty: bool) -> None:
        entry: Obj = {"created": created, "created_by": created_by, "comment": HISTORY_COMMENT}
        if empty:
            entry["empty_layer"] = True
        self.history.append(entry)
        self.created = created


def with_default_path(config: Obj) -> Obj:
    env = list(config.get("Env") or [])
    if not any(str(e).startswith("PATH=") for e in env):
        config["Env"] = [f"PATH={DEFAULT_PATH}", *env]
    return config


def set_env(config: Obj, key: str, value: str) -> None:
    env = list(config.get("Env") or [])
    for i, item in enumerate(env):
        if str(item).partition("=")[0] == key:
            env[i] = f"{key}={value}"
            break
    else:
        env.append(f"{key}={value}")
    config["Env"] = env


def workdir(current: str, path: str) -> str:
    return posixpath.normpath(posixpath.join("/", current or "/", path))


def command_line(state: StageState, args: tuple[str, ...], shell_form: bool) -> list[str]:
    return [*state.shell, " ".join(args)] if shell_form else list(args)


def exposed_ports(values: list[str]) -> list[str]:
    ports = []
    for value in values:
        match = _PORT.match(value)
        if match is None:
            raise MetadataError(f"EXPOSE {value}: invalid port (write PORT, PORT/tcp, PORT/udp or a range 8000-8010)")
        first, last = int(match.group(1)), int(match.group(2) or match.group(1))
        if not 0 < first <= last <= 65535:
            raise MetadataError(f"EXPOSE {value}: ports must be between 1 and 65535")
        proto = (match.group(3) or "tcp").lower()
        ports += [f"{p}/{proto}" for p in range(first, last + 1)]
    return ports


def check_signal(value: str) -> str:
    name = value.upper()
    if value.isdigit() or name.removeprefix("SIG") in {s.name.removeprefix("SIG") for s in signal.Signals}:
        return value
    if re.fullmatch(r"SIGRTM(IN|AX)([+-]\d+)?", name):
        return value
    raise MetadataError(f"STOPSIGNAL {value}: unknown signal (use a name such as SIGTERM or a number)")


def apply_metadata(state: StageState, kind: str, values: Any) -> str:
    """Change the config for one metadata instruction; returns its history text."""
    config = state.config
    if kind == "ENV":
        for key, value in values:
            set_env(config, key, value)
        return "ENV " + " ".join(f"{k}={v}" for k, v in values)
    if kind == "LABEL":
        config["Labels"] = {**(config.get("Labels") or {}), **dict(values)}
        return "LABEL " + " ".join(f"{k}={v}" for k, v in values)
    if kind == "WORKDIR":
        config["WorkingDir"] = workdir(state.workdir, values)
        return f"WORKDIR {config['WorkingDir']}"
    if kind == "USER":
        config["User"] = values
        return f"USER {values}"
    if kind == "EXPOSE":
        ports = exposed_ports(values)
        config["ExposedPorts"] = {**(config.get("ExposedPorts") or {}), **{p: {} for p in ports}}
        return "EXPOSE " + " ".join(ports)
    if kind in ("CMD", "ENTRYPOINT"):
        args, shell_form = values
        argv = command_line(state, args, shell_form)
        if kind == "CMD":
            config["Cmd"], state.cmd_set = argv, True
        else:
            config["Entrypoint"] = argv or None
            if not state.cmd_set:
                config["Cmd"] = None
        return f"{kind} {json.dumps(argv)}"
    if kind == "VOLUME":
        config["Volumes"] = {**(config.get("Volumes") or {}), **{v: {} for v in values}}
        return f"VOLUME {json.dumps(list(values))}"
    if kind == "SHELL":
        config["Shell"] = list(values)
        return f"SHELL {json.dumps(list(values))}"
    if kind == "STOPSIGNAL":
        config["StopSignal"] = check_signal(values)
        return f"STOPSIGNAL {values}"
    if kind == "HEALTHCHECK":
        config["Healthcheck"] = values
        return f"HEALTHCHECK {json.dumps(values)}"
    if kind == "ONBUILD":
        config["OnBuild"] = [*(config.get("OnBuild") or []), values]
        return f"ONBUILD {values}"
    if kind == "MAINTAINER":
        state.author = values
        return f"MAINTAINER {values}"
    raise MetadataError(f"{kind} is not a metadata instruction")
