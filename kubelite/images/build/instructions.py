"""Parsed nodes -> typed instructions grouped into build stages (pure).

`parse_stages` checks what Docker checks before a build starts: known instruction names (with a
"did you mean" for typos), flags each instruction accepts, argument counts, FROM's `AS name`,
unique stage names, SHELL in JSON form, HEALTHCHECK options. Values keep their quotes and `$VAR`s:
they are substituted when the stage runs, with that moment's environment. ARGs before the first
FROM are the global (meta) args, usable in FROM lines.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field

from kubelite.images.build.dockerfile import Dockerfile, DockerfileError, Heredoc, Node

KNOWN = ("add", "arg", "cmd", "copy", "entrypoint", "env", "expose", "from", "healthcheck", "label",
         "maintainer", "onbuild", "run", "shell", "stopsignal", "user", "volume", "workdir")
FLAGS: dict[str, dict[str, str]] = {  # instruction -> flag -> "str" | "bool"
    "from": {"platform": "str"},
    "copy": {"from": "str", "chown": "str", "chmod": "str", "link": "bool", "parents": "bool", "exclude": "str"},
    "add": {"chown": "str", "chmod": "str", "link": "bool", "keep-git-dir": "bool", "checksum": "str"},
    "run": {"network": "str", "mount": "str", "security": "str"},
    "healthcheck": {"interval": "str", "timeout": "str", "start-period": "str", "start-interval": "str",
                    "retries": "str"},
}
_STAGE_NAME = re.compile(r"^[a-z][a-z0-9-_.]*$")
_DURATION = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")
_UNITS = {"ns": 1, "us": 1_000, "µs": 1_000, "ms": 1_000_000, "s": 10**9, "m": 60 * 10**9, "h": 3600 * 10**9}


@dataclass(frozen=True)
class Instruction:
    node: Node

    @property
    def line(self) -> int:
        return self.node.line

    @property
    def name(self) -> str:
        return self.node.command.upper()

    @property
    def text(self) -> str:
        return self.node.original


@dataclass(frozen=True)
class From(Instruction):
    image: str
    stage_name: str
    platform: str = ""


@dataclass(frozen=True)
class CommandLine(Instruction):  # RUN, CMD, ENTRYPOINT
    args: tuple[str, ...]
    shell_form: bool
    heredocs: tuple[Heredoc, ...] = ()
    network: str = ""


@dataclass(frozen=True)
class Copy(Instruction):  # COPY and ADD
    sources: tuple[str, ...]
    dest: str
    inline: tuple[Heredoc, ...] = ()  # COPY <<EOF files
    from_: str = ""
    chown: str = ""
    chmod: str = ""
    add: bool = False


@dataclass(frozen=True)
class KeyValues(Instruction):  # ENV, LABEL
    pairs: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Arg(Instruction):
    pairs: tuple[tuple[str, str | None], ...]


@dataclass(frozen=True)
class Words(Instruction):  # EXPOSE, VOLUME
    values: tuple[str, ...]


@dataclass(frozen=True)
class Value(Instruction):  # WORKDIR, USER, STOPSIGNAL, MAINTAINER, ONBUILD
    value: str


@dataclass(frozen=True)
class Shell(Instruction):
    shell: tuple[str, ...]


@dataclass(frozen=True)
class Healthcheck(Instruction):
    test: tuple[str, ...]  # ("NONE",) | ("CMD", ...) | ("CMD-SHELL", "...")
    interval: int = 0  # nanoseconds, as Docker stores them
    timeout: int = 0
    start_period: int = 0
    start_interval: int = 0
    retries: int = 0


@dataclass
class Stage:
    index: int
    from_: From
    instructions: list[Instruction] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.from_.stage_name

    @property
    def label(self) -> str:
        """How progress names the stage: its name, else stage-N."""
        return self.name or f"stage-{self.index}"


@dataclass(frozen=True)
class Parsed:
    meta_args: tuple[Arg, ...]
    stages: tuple[Stage, ...]
    escape: str


def parse_stages(df: Dockerfile, *, filename: str = "Dockerfile") -> Parsed:
    meta: list[Arg] = []
    stages: list[Stage] = []
    for node in df.nodes:
        try:
            instr = instruction(node)
            if isinstance(instr, From):
                if instr.stage_name and any(s.name == instr.stage_name for s in stages):
                    raise DockerfileError(f"duplicate stage name {instr.stage_name!r}")
                stages.append(Stage(len(stages), instr))
            elif not stages:
                if not isinstance(instr, Arg):
                    raise DockerfileError(f"{instr.name} before the first FROM: a Dockerfile starts with FROM "
                                          "(only ARG may come before it)")
                meta.append(instr)
            else:
                stages[-1].instructions.append(instr)
        except DockerfileError as e:
            raise DockerfileError(e.message, node.line, filename) from None
    if not stages:
        raise DockerfileError("no FROM instruction: a Dockerfile needs at least one build stage", 0, filename)
    return Parsed(tuple(meta), tuple(stages), df.escape)


def instruction(node: Node) -> Instruction:
    if node.command not in KNOWN:
        close = difflib.get_close_matches(node.command, KNOWN, n=1, cutoff=0.6)
        hint = f" (did you mean {close[0].upper()}?)" if close else " (see the Dockerfile reference for the instructions)"
        raise DockerfileError(f"unknown instruction: {node.command.upper()}{hint}")
    flags = parse_flags(node)
    name = node.command.upper()
    if node.command == "from":
        return _from(node, flags)
    if node.command in ("run", "cmd", "entrypoint"):
        if node.command == "run":
            _unsupported_run_flags(flags)
            if not node.args and not node.heredocs:
                raise DockerfileError("RUN requires at least one argument")
        network = str(flags.get("network", ""))
        if network not in ("", "default", "none", "host"):
            raise DockerfileError(f"RUN --network={network}: use none, host or default")
        return CommandLine(node, node.args, not node.json, node.heredocs, network)
    if node.command in ("copy", "add"):
        return _copy(node, flags)
    if node.command in ("env", "label"):
        if not node.args:
            raise DockerfileError(f"{name} requires at least one argument")
        if any(not k for k in node.args[::2]):
            raise DockerfileError(f"{name} names can not be blank")
        return KeyValues(node, tuple(zip(node.args[::2], node.args[1::2], strict=True)))
    if node.command == "arg":
        return _arg(node)
    if node.command in ("expose", "volume"):
        if not node.args or (node.command == "volume" and any(not v.strip() for v in node.args)):
            raise DockerfileError(f"{name} requires at least one argument")
        return Words(node, node.args)
    if node.command == "shell":
        if not node.args:
            raise DockerfileError("SHELL requires at least one argument")
        if not node.json:
            raise DockerfileError('SHELL requires the arguments to be in JSON form, e.g. SHELL ["/bin/bash", "-c"]')
        return Shell(node, node.args)
    if node.command == "healthcheck":
        return _healthcheck(node, flags)
    if node.command == "onbuild":
        return _onbuild(node)
    if len(node.args) != 1:  # workdir, user, stopsignal, maintainer
        raise DockerfileError(f"{name} requires exactly one argument")
    return Value(node, node.args[0])


def parse_flags(node: Node) -> dict[str, str | bool]:
    allowed = FLAGS.get(node.command, {})
    out: dict[str, str | bool] = {}
    for raw in node.flags:
        key, eq, value = raw.removeprefix("--").partition("=")
        kind = allowed.get(key)
        if kind is None:
            raise DockerfileError(f"unknown flag: --{key} (not an option of {node.command.upper()})")
        if key in out:
            raise DockerfileError(f"duplicate flag specified: --{key}")
        if kind == "bool":
            if eq and value.lower() not in ("true", "false"):
                raise DockerfileError(f"expecting boolean value for flag --{key}, not: {value}")
            out[key] = not eq or value.lower() == "true"
        elif not eq:
            raise DockerfileError(f"missing a value on flag: --{key} (write --{key}=VALUE)")
        else:
            out[key] = value
    return out


def _from(node: Node, flags: dict[str, str | bool]) -> From:
    args = node.args
    if len(args) == 3 and args[1].lower() == "as":
        stage = args[2].lower()
        if not _STAGE_NAME.match(stage):
            raise DockerfileError(f"invalid name for build stage: {args[2]!r}, name can't start with a number "
                                  "or contain symbols")
    elif len(args) == 1:
        stage = ""
    else:
        raise DockerfileError("FROM requires either one or three arguments (FROM image [AS name])")
    return From(node, args[0], stage, str(flags.get("platform", "")))


def _unsupported_run_flags(flags: dict[str, str | bool]) -> None:
    for key in ("mount", "security"):
        if key in flags:
            raise DockerfileError(f"RUN --{key} is not supported by kubelite image build")


def _copy(node: Node, flags: dict[str, str | bool]) -> Copy:
    name = node.command.upper()
    if len(node.args) < 2:
        raise DockerfileError(f"{name} requires at least two arguments, but only one was provided. "
                              "Destination could not be determined")
    for key in ("parents", "exclude", "checksum", "keep-git-dir"):
        if key in flags:
            raise DockerfileError(f"{name} --{key} is not supported by kubelite image build")
    docs = {h.name: h for h in node.heredocs}
    sources, inline = [], []
    for src in node.args[:-1]:
        marker = src.lstrip("0123456789").removeprefix("<<").removeprefix("-").strip("'\"")
        if src.lstrip("0123456789").startswith("<<") and marker in docs:
            inline.append(docs[marker])
        else:
            sources.append(src)
    return Copy(node, tuple(sources), node.args[-1], tuple(inline), str(flags.get("from", "")),
                str(flags.get("chown", "")), str(flags.get("chmod", "")), add=node.command == "add")


def _arg(node: Node) -> Arg:
    if not node.args:
        raise DockerfileError("ARG requires at least one argument")
    pairs: list[tuple[str, str | None]] = []
    for word in node.args:
        key, eq, value = word.partition("=")
        if not key:
            raise DockerfileError("ARG names can not be blank")
        pairs.append((key, value if eq else None))
    return Arg(node, tuple(pairs))


def _healthcheck(node: Node, flags: dict[str, str | bool]) -> Healthcheck:
    if not node.args:
        raise DockerfileError("HEALTHCHECK requires at least one argument")
    kind, args = node.args[0].upper(), node.args[1:]
    if kind == "NONE":
        if args or flags:
            raise DockerfileError("HEALTHCHECK NONE takes no arguments")
        return Healthcheck(node, ("NONE",))
    if kind != "CMD":
        raise DockerfileError(f"Unknown type {kind!r} in HEALTHCHECK (try CMD)")
    if not args:
        raise DockerfileError("Missing command after HEALTHCHECK CMD")
    test = ("CMD", *args) if node.json else ("CMD-SHELL", *args)
    retries = str(flags.get("retries", "") or "0")
    if not retries.isdigit():
        raise DockerfileError(f"HEALTHCHECK --retries must be a non-negative integer, not {retries!r}")
    interval, timeout, start_period, start_interval = (
        duration(str(flags.get(k, "")), k) for k in ("interval", "timeout", "start-period", "start-interval"))
    return Healthcheck(node, test, interval, timeout, start_period, start_interval, int(retries))


def duration(text: str, flag: str) -> int:
    """A Go duration ("30s", "1m30s", "500ms") in nanoseconds; "" is 0."""
    if not text or text == "0":
        return 0
    pos, total = 0, 0.0
    while pos < len(text):
        match = _DURATION.match(text, pos)
        if match is None:
            raise DockerfileError(f"HEALTHCHECK --{flag}: invalid duration {text!r} (e.g. 30s, 1m30s)")
        total += float(match.group(1)) * _UNITS[match.group(2)]
        pos = match.end()
    if total < 1_000_000:
        raise DockerfileError(f"HEALTHCHECK --{flag} cannot be less than 1ms")
    return int(total)


def _onbuild(node: Node) -> Value:
    if node.child is None:
        raise DockerfileError("ONBUILD requires at least one argument")
    trigger = node.child.command.upper()
    if trigger == "ONBUILD":
        raise DockerfileError("Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed")
    if trigger in ("MAINTAINER", "FROM"):
        raise DockerfileError(f"{trigger} isn't allowed as an ONBUILD trigger")
    instruction(node.child)  # the trigger must itself be valid
    return Value(node, node.args[0])
