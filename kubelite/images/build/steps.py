"""One Dockerfile instruction of a stage: substitute its variables, look it up in the cache, and
either take the cached result or do the work.

Filesystem steps (RUN, COPY/ADD, WORKDIR) print a progress step (`CACHED`, or the RUN's output
and `DONE`) and may add a layer; metadata steps change the config only (history entries with
`empty_layer`). Every step, metadata included, extends the cache chain and takes its creation
time from the cache on a hit, so a fully cached rebuild reproduces the image byte for byte.
"""

from __future__ import annotations

import json
import stat
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kubelite.agent.runtime.runc.rootfs import remove_tree
from kubelite.images.build import copying, runner
from kubelite.images.build.cache import CacheEntry, step_key
from kubelite.images.build.errors import BuildError
from kubelite.images.build.instructions import (
    Arg,
    CommandLine,
    Copy,
    Healthcheck,
    Instruction,
    KeyValues,
    Shell,
    Value,
    Words,
)
from kubelite.images.build.progress import Step
from kubelite.images.build.rootview import RootView, Tree, TreeError, resolve
from kubelite.images.build.shellwords import ShellWordError
from kubelite.images.build.stage import Layer, MetadataError, StageState, apply_metadata, command_line
from kubelite.images.build.tarlayer import LayerBlob, LayerWriter

if TYPE_CHECKING:
    from kubelite.images.build.executor import Builder

Made = tuple[LayerBlob, Path] | None  # a new layer blob (and where it was written), or no layer


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def run(b: Builder, state: StageState, instr: Instruction, position: str, stage_index: int) -> None:
    """`position` ("[build 2/4]") starts the progress title; the instruction's text follows, with
    its variables substituted where the builder substitutes them."""
    try:
        _dispatch(b, state, instr, position, stage_index)
    except (ShellWordError, MetadataError, copying.CopyError, TreeError, runner.RunError, OSError) as e:
        text = " ".join(instr.text.split())
        raise BuildError(f"{b.filename}:{instr.line}: {text[:120]}: {e}") from None


def _dispatch(b: Builder, state: StageState, instr: Instruction, position: str, stage_index: int) -> None:
    env = state.env()
    if isinstance(instr, CommandLine) and instr.name == "RUN":
        _run(b, state, instr, f"{position} {' '.join(instr.text.split())}")
    elif isinstance(instr, Copy):
        _copy(b, state, instr, position, stage_index)
    elif isinstance(instr, Arg):
        _arg(b, state, instr)
    elif isinstance(instr, Value) and instr.name == "WORKDIR":
        created_by = apply_metadata(state, "WORKDIR", b.lexer.word(instr.value, env))
        _fs_step(b, state, f"{position} {created_by}", created_by, "", lambda step: _workdir(b, state), created_by)
    else:
        _metadata_step(b, state, apply_metadata(state, instr.name, _metadata_values(b, instr, env)))


def _metadata_values(b: Builder, instr: Instruction, env: dict[str, str]) -> Any:
    word = b.lexer.word
    if isinstance(instr, KeyValues):  # every pair sees the environment from before the instruction
        return [(word(k, env), word(v, env)) for k, v in instr.pairs]
    if isinstance(instr, Words):
        if instr.name == "EXPOSE":
            return [p for v in instr.values for p in b.lexer.words(v, env)]
        return [word(v, env).strip() for v in instr.values]
    if isinstance(instr, CommandLine):
        return instr.args, instr.shell_form
    if isinstance(instr, Shell):
        return list(instr.shell)
    if isinstance(instr, Healthcheck):
        keys = ("Interval", "Timeout", "StartPeriod", "StartInterval", "Retries")
        values = (instr.interval, instr.timeout, instr.start_period, instr.start_interval, instr.retries)
        return {"Test": list(instr.test), **{k: v for k, v in zip(keys, values, strict=True) if v}}
    if isinstance(instr, Value):
        return word(instr.value, env) if instr.name in ("USER", "STOPSIGNAL") else instr.value
    raise MetadataError(f"{instr.name} is not supported")


def _arg(b: Builder, state: StageState, instr: Arg) -> None:
    texts = []
    for name, default in instr.pairs:
        value: str | None = None
        if name in b.options.build_args:
            value = b.options.build_args[name]
            b.used_args.add(name)
        elif default is not None:
            value = b.lexer.word(default, state.env())
        elif name in b.meta:
            value = b.meta[name]
        if value is not None:
            state.args[name] = value
        texts.append(name if value is None else f"{name}={value}")
    _metadata_step(b, state, "ARG " + " ".join(texts))


def _metadata_step(b: Builder, state: StageState, created_by: str) -> None:
    key = step_key(state.chain, created_by)
    entry = None if b.options.no_cache else b.cache.get(key)
    if entry is None:
        entry = CacheEntry(None, now(), created_by)
        b.cache.put(key, entry)
    state.add_history(created_by, entry.created, empty=True)
    state.chain = key


def _fs_step(b: Builder, state: StageState, title: str, text: str, extra: str,
             produce: Callable[[Step], Made], created_by: str) -> None:
    key = step_key(state.chain, text, extra)
    step = b.progress.step(title)
    b.steps += 1
    entry = None if b.options.no_cache else b.cache.get(key)
    if entry is not None:
        step.cached()
        b.cached += 1
    else:
        made = produce(step)
        if made is not None:
            b.cache.commit_blob(made[1], made[0])
        entry = CacheEntry(made[0] if made else None, now(), created_by)
        b.cache.put(key, entry)
        step.done()
    if entry.layer is not None:
        state.layers.append(Layer(entry.layer, b.cache.blob_path(entry.layer.digest)))
    state.add_history(entry.created_by, entry.created, empty=entry.layer is None)
    state.chain = key


def _write_layer(b: Builder, fill: Callable[[LayerWriter], None]) -> Made:
    writer = LayerWriter(b.cache.new_blob())
    try:
        fill(writer)
        blob = writer.close()
    except BaseException:
        writer.abort()
        raise
    return blob, writer.path


# ----- RUN ---------------------------------------------------------------------------------------------


def run_argv(state: StageState, instr: CommandLine) -> list[str]:
    """The argv of a RUN: exec form as is; shell form through SHELL, heredocs appended for the
    shell to read. A RUN that is only a heredoc runs it as the script: through SHELL, or, when it
    starts with `#!`, as a program of its own (mounted at /dev/pipes/<name>, as buildkit does)."""
    if not instr.shell_form:
        return list(instr.args)
    command = " ".join(instr.args)
    docs = instr.heredocs
    if len(docs) == 1 and command.strip().lstrip("0123456789").lstrip("<-").strip("'\"") == docs[0].name:
        script = docs[0]
        return [f"/dev/pipes/{script.name}"] if script.content.startswith("#!") else [*state.shell, script.content]
    if docs:
        command += "\n" + "".join(d.content + d.name + "\n" for d in docs)
    return command_line(state, (command,), True)


def _run(b: Builder, state: StageState, instr: CommandLine, title: str) -> None:
    network = instr.network if instr.network not in ("", "default") else b.options.network
    argv = run_argv(state, instr)
    user, workdir = str(state.config.get("User") or ""), state.workdir
    extra = json.dumps([state.run_env(), user, workdir, network])
    args = [f"{k}={v}" for k, v in state.args.items()]
    created_by = "RUN " + (f"|{len(args)} {' '.join(args)} " if args else "") + " ".join(argv) + " # buildkit"

    def produce(step: Step) -> Made:
        problems = runner.host_problems(b.options.runc)
        if problems:
            raise BuildError(f"{b.filename}:{instr.line}: " + "; ".join(problems))
        scratch = b.new_scratch()
        try:
            pipes = {d.name: d.content for d in instr.heredocs}
            request = runner.RunRequest(b.layer_dirs(state), argv, state.run_env(), user, workdir, network, scratch,
                                        pipes)
            code, upper = runner.run(request, step.line, runc=b.options.runc)
            if code != 0:
                raise BuildError(f"{b.filename}:{instr.line}: process {json.dumps(' '.join(argv))} did not complete "
                                 f"successfully: exit code: {code}")
            if not any(upper.iterdir()):
                return None
            return _write_layer(b, lambda w: w.add_tree(upper, overlay=True))
        finally:
            remove_tree(scratch)

    _fs_step(b, state, title, "RUN " + json.dumps(argv), extra, produce, created_by)


# ----- COPY / ADD / WORKDIR ----------------------------------------------------------------------------


def _copy(b: Builder, state: StageState, instr: Copy, position: str, stage_index: int) -> None:
    env = state.env()
    word = b.lexer.word
    sources = [word(s, env) for s in instr.sources]
    dest, chown, chmod, from_ = (word(x, env) for x in (instr.dest, instr.chown, instr.chmod, instr.from_))
    inline = [(d.name, (b.lexer.expand(d.content, env) if d.expand else d.content).encode()) for d in instr.inline]
    tree, from_context = _source(b, from_, stage_index, instr.line)
    request = copying.Request(sources, dest, state.workdir, chown, chmod, instr.add, inline, from_context)
    plan = copying.plan(request, tree, RootView(b.layer_dirs(state)))
    flags = "".join(f"--{k}={v} " for k, v in (("from", from_), ("chown", chown), ("chmod", chmod)) if v)
    text = f"{instr.name} {flags}{' '.join([*sources, *(f'<<{n}' for n, _ in inline)])} {dest}"
    _fs_step(b, state, f"{position} {text}", text, plan.digest,
             lambda step: _write_layer(b, lambda w: copying.write(plan, tree, w)), text + " # buildkit")


def _source(b: Builder, from_: str, stage_index: int, line: int) -> tuple[Tree, bool]:
    if not from_:
        return b.tree, True
    ref = b.stage_ref(from_, stage_index)
    if ref is not None:
        if ref not in b.states:  # named through a stage ARG, which the dependency walk cannot see
            raise BuildError(f"{b.filename}:{line}: COPY --from={from_}: that stage was not built; name it "
                             "literally or with an ARG declared before the first FROM")
        return RootView(b.layer_dirs(b.states[ref])), False
    if b.stage_ref(from_, len(b.parsed.stages)) is not None:
        raise BuildError(f"{b.filename}:{line}: COPY --from={from_}: a stage can only copy from stages before it")
    return RootView(b.layer_dirs(b.image_state(from_, "copy-source", line=line))), False


def _workdir(b: Builder, state: StageState) -> Made:
    view = RootView(b.layer_dirs(state))
    rel = resolve(view, state.workdir)
    st = view.lstat(rel) if rel else None
    if not rel or (st is not None and stat.S_ISDIR(st.st_mode)):
        return None
    if st is not None:
        raise copying.CopyError(f"{state.workdir} exists and is not a directory")
    user = str(state.config.get("User") or "")
    owner = copying.chown_ids(user, view) if user else (0, 0)
    plan = copying.mkdir_plan(rel, view, owner)
    return _write_layer(b, lambda w: copying.write(plan, view, w))
