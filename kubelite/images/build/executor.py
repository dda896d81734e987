"""The build: Dockerfile and context in, an image in the store out.

    load context + Dockerfile -> parse -> stages the target needs (FROM <stage> and COPY --from)
    -> each stage: its base (a store image, an earlier stage, or scratch), then its instructions
       (`steps.py`), each a cache lookup first -> export the target stage under the -t names

Stages the target does not need are skipped (buildkit's behaviour). ARGs before the first FROM
(with --build-arg overrides, and the predefined TARGETPLATFORM/BUILDPLATFORM family) expand FROM
lines and --from flags; a stage sees an ARG only after declaring it. The build never pulls: a
base image must be in the store (`kubelite image load/import/pull`, or `kubelite image base`).
Every failure is a `BuildError` whose message names the Dockerfile line.
"""

from __future__ import annotations

import contextlib
import copy
import os
import platform as platform_mod
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from kubelite.images.api import ImageNotFound, InvalidImageName
from kubelite.images.build import context, steps
from kubelite.images.build.cache import BuildCache, step_key
from kubelite.images.build.dockerfile import DockerfileError, parse
from kubelite.images.build.dockerignore import IgnoreError
from kubelite.images.build.errors import BuildError
from kubelite.images.build.export import export
from kubelite.images.build.instructions import Copy, Parsed, Stage, parse_stages
from kubelite.images.build.progress import Progress
from kubelite.images.build.shellwords import Lexer, ShellWordError
from kubelite.images.build.stage import Layer, StageState, with_default_path
from kubelite.images.build.tarlayer import LayerBlob
from kubelite.images.oci import host_platform
from kubelite.images.reference import normalize
from kubelite.images.store import ImageStore

FS_INSTRUCTIONS = ("RUN", "COPY", "ADD", "WORKDIR")
UNCONSUMED_OK = {"HTTP_PROXY", "HTTPS_PROXY", "FTP_PROXY", "NO_PROXY", "ALL_PROXY", "http_proxy", "https_proxy",
                 "ftp_proxy", "no_proxy", "all_proxy"}


@dataclass(frozen=True)
class BuildOptions:
    context: Path
    dockerfile: str | None = None
    tags: tuple[str, ...] = ()
    build_args: dict[str, str] = field(default_factory=dict)
    target: str = ""
    no_cache: bool = False
    network: str = "none"
    runc: str = "runc"


@dataclass(frozen=True)
class BuildResult:
    image_id: str
    names: tuple[str, ...]
    steps: int
    cached: int
    seconds: float


def platform_args() -> dict[str, str]:
    p = host_platform()
    variant = "v8" if p["architecture"] == "arm64" and platform_mod.machine() == "aarch64" else ""
    plat = f"{p['os']}/{p['architecture']}" + (f"/{variant}" if variant else "")
    values = {}
    for prefix in ("TARGET", "BUILD"):
        values.update({f"{prefix}PLATFORM": plat, f"{prefix}OS": p["os"], f"{prefix}ARCH": p["architecture"],
                       f"{prefix}VARIANT": variant})
    return values


class Builder:
    def __init__(self, store: ImageStore, options: BuildOptions, out: TextIO, *, quiet: bool = False) -> None:
        self.store, self.options = store, options
        self.cache = BuildCache(store.root / "build-cache")
        self.scratch = store.root / "build-tmp"
        self.progress = Progress(out, quiet=quiet)
        self.used_args: set[str] = set()
        self.states: dict[int, StageState] = {}
        self.steps = self.cached = 0

    def build(self) -> BuildResult:
        started = time.monotonic()
        for tag in self.options.tags:  # a bad -t fails before the work, not after it
            try:
                normalize(tag)
            except InvalidImageName as e:
                raise BuildError(f"-t {tag}: {e}") from None
        self.cache.remove_stale_tmp()
        try:
            loaded = context.load(self.options.context, self.options.dockerfile)
            self.tree, self.filename = loaded.tree, loaded.dockerfile_name
            dockerfile = parse(loaded.dockerfile_text, filename=self.filename)
            parsed = parse_stages(dockerfile, filename=self.filename)
        except (DockerfileError, context.ContextError, IgnoreError) as e:
            raise BuildError(str(e)) from None
        for warning in dockerfile.warnings:
            self.progress.warn(warning)
        self.parsed, self.lexer = parsed, Lexer(parsed.escape)
        self.meta = self._meta_args(parsed)
        target = self._target(parsed)
        needed = self._needed(parsed, target)
        try:
            for stage in parsed.stages[:target.index + 1]:
                if stage.index in needed:
                    self.states[stage.index] = self._run_stage(stage)
            self._warn_unused_args()
            image_id, names = self._export(self.states[target.index])
        finally:
            with contextlib.suppress(OSError):  # only when empty: another build may be using it
                self.scratch.rmdir()
        return BuildResult(image_id, tuple(names), self.steps, self.cached, time.monotonic() - started)

    # ----- args and stage selection ------------------------------------------------------------------

    def _meta_args(self, parsed: Parsed) -> dict[str, str]:
        values = platform_args()
        for arg in parsed.meta_args:
            for name, default in arg.pairs:
                if name in self.options.build_args:
                    values[name] = self.options.build_args[name]
                    self.used_args.add(name)
                elif default is not None:
                    values[name] = self.word(default, values, arg.line)
        return values

    def word(self, text: str, env: dict[str, str], line: int) -> str:
        try:
            return self.lexer.word(text, env)
        except ShellWordError as e:
            raise BuildError(f"{self.filename}:{line}: {e}") from None

    def _target(self, parsed: Parsed) -> Stage:
        if not self.options.target:
            return parsed.stages[-1]
        for stage in parsed.stages:
            if stage.name == self.options.target.lower():
                return stage
        names = ", ".join(s.name for s in parsed.stages if s.name) or "none"
        raise BuildError(f"target stage {self.options.target!r} could not be found (stages named: {names})")

    def stage_ref(self, name: str, before: int) -> int | None:
        """The index of an earlier stage `name` refers to (by name or number), else None."""
        lowered = name.lower()
        for stage in self.parsed.stages[:before]:
            if stage.name == lowered or str(stage.index) == name:
                return stage.index
        return None

    def _needed(self, parsed: Parsed, target: Stage) -> set[int]:
        deps: dict[int, set[int]] = {}
        for stage in parsed.stages:
            refs = {self.word(stage.from_.image, self.meta, stage.from_.line)}
            refs |= {self.word(i.from_, self.meta, i.line) for i in stage.instructions if isinstance(i, Copy) and i.from_}
            deps[stage.index] = {i for r in refs if (i := self.stage_ref(r, stage.index)) is not None}
        needed, todo = set(), [target.index]
        while todo:
            index = todo.pop()
            if index not in needed:
                needed.add(index)
                todo += deps[index]
        return needed

    def _warn_unused_args(self) -> None:
        unused = sorted(set(self.options.build_args) - self.used_args - UNCONSUMED_OK)
        if unused:
            self.progress.warn(f"one or more build args {unused} were not consumed")

    # ----- stages ----------------------------------------------------------------------------------------

    def _run_stage(self, stage: Stage) -> StageState:
        total = 1 + sum(i.name in FS_INSTRUCTIONS for i in stage.instructions)
        prefix = f"{stage.label} " if len(self.parsed.stages) > 1 else ""
        image = self.word(stage.from_.image, self.meta, stage.from_.line)
        step = self.progress.step(f"[{prefix}1/{total}] FROM {image}")
        state = self._base(stage, image)
        step.done()
        position = 1
        for instr in stage.instructions:
            if instr.name in FS_INSTRUCTIONS:
                position += 1
            steps.run(self, state, instr, f"[{prefix}{position}/{total}]", stage.index)
        return state

    def _base(self, stage: Stage, image: str) -> StageState:
        ref = self.stage_ref(image, stage.index)
        if ref is not None:
            state = self.states[ref].copy(stage.label)
            self._drop_onbuild(state.config, image)
            return state
        if image.lower() == "scratch":
            return StageState(stage.label, with_default_path({}), chain=step_key("", "scratch"), base_name="scratch")
        platform = self.word(stage.from_.platform, self.meta, stage.from_.line) if stage.from_.platform else ""
        if platform and platform != self.meta["TARGETPLATFORM"]:
            self.progress.warn(f"FROM --platform={platform}: building for this host's {self.meta['TARGETPLATFORM']}")
        return self.image_state(image, stage.label, line=stage.from_.line)

    def image_state(self, image: str, label: str, *, line: int) -> StageState:
        """A stage state starting from a store image (also what COPY --from=<image> reads)."""
        try:
            match = self.store.find(image)
            content = self.store.content(match.entry.target)
            record = self.store.get(image)  # unpacks what is missing
        except ImageNotFound:
            raise BuildError(f"{self.filename}:{line}: {image}: no such image in the local store "
                             f"({self._normalized(image)}); the build does not pull: load, import or pull it "
                             "first, or make a base image with `kubelite image base`") from None
        except InvalidImageName as e:
            raise BuildError(f"{self.filename}:{line}: {image}: {e}") from None
        layers = [Layer(LayerBlob(d.digest, diff_id, d.size, d.media_type), self.store.blobs.path(d.digest))
                  for d, diff_id in zip(content.layers, content.diff_ids, strict=True)]
        config = with_default_path(copy.deepcopy(content.config.get("config") or {}))
        self._drop_onbuild(config, image)
        return StageState(label, config, copy.deepcopy(content.config.get("history") or []), layers,
                          chain=step_key("", "image", content.config_digest), created=str(content.config.get("created", "")),
                          base_name=record.reference)

    def _drop_onbuild(self, config: dict[str, object], base: str) -> None:
        """A base's ONBUILD triggers are consumed by the child (Docker runs them; this builder does not)."""
        if config.pop("OnBuild", None):
            self.progress.warn(f"{base}: its ONBUILD triggers are not run by this builder")

    @staticmethod
    def _normalized(image: str) -> str:
        try:
            return normalize(image)
        except InvalidImageName:
            return image

    # ----- export -------------------------------------------------------------------------------------------

    def _export(self, state: StageState) -> tuple[str, list[str]]:
        step = self.progress.step("exporting to image")
        try:
            image_id, records = export(self.store, state, list(self.options.tags), scratch=self.scratch)
        except InvalidImageName as e:
            raise BuildError(f"-t: {e}") from None
        step.note(f"writing image {image_id} done")
        names = [r.reference for r in records if r.reference]
        for name in names:
            step.note(f"naming to {name} done")
        step.done()
        return image_id, names

    def snapshot(self, blob: LayerBlob, path: Path) -> Path:
        return self.store.snapshots.ensure(blob.diff_id, path).path

    def layer_dirs(self, state: StageState) -> list[Path]:
        """The stage's unpacked layers, re-unpacked if an image removal collected one meanwhile
        (a build's own layers belong to no image until it is exported)."""
        return [self.snapshot(layer.blob, layer.path) for layer in state.layers]

    def new_scratch(self) -> Path:
        self.scratch.mkdir(parents=True, exist_ok=True)
        path = self.scratch / f"step-{os.getpid()}-{time.monotonic_ns()}"
        path.mkdir()
        return path
