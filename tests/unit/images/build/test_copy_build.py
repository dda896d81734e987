"""Builds without RUN (no root, no runc): COPY/ADD semantics, ARG scoping, the layer cache, and
errors that name the Dockerfile line and the file."""

from __future__ import annotations

import gzip
import io
import tarfile
from pathlib import Path

import pytest

from kubelite.images.build.errors import BuildError
from kubelite.images.build.executor import Builder, BuildOptions, BuildResult
from kubelite.images.store import ImageStore
from kubelite.images.testimages import GROUP, LayerBuilder, build_image, write_layout

BASE = "docker.io/kubelite/copybase:1"
PASSWD = "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1001:app:/home/app:/bin/sh\n"


@pytest.fixture
def store(tmp_path: Path) -> ImageStore:
    store = ImageStore(tmp_path / "store")
    base = (LayerBuilder().dir("etc").file("etc/passwd", PASSWD).file("etc/group", GROUP + "app:x:1001:\n")
            .dir("usr").dir("usr/bin").symlink("bin", "usr/bin").dir("opt", 0o700, uid=1000).build())
    store.import_oci_layout(write_layout(tmp_path / "layout", {BASE: build_image([base], cmd=["sh"])}))
    return store


def layer_members(store: ImageStore, ref: str) -> dict[str, tarfile.TarInfo]:
    """Every layer's tar entries by path, upper layers winning (ownership as recorded, root or not)."""
    content = store.content(store.find(ref).entry.target)
    members = {}
    for layer in content.layers:
        with tarfile.open(store.blobs.path(layer.digest)) as tar:
            members.update({m.name.rstrip("/"): m for m in tar.getmembers()})
    return members


def context(tmp_path: Path, dockerfile: str, files: dict[str, str | bytes]) -> Path:
    ctx = tmp_path / "ctx"
    for rel, data in {"Dockerfile": dockerfile, **files}.items():
        (ctx / rel).parent.mkdir(parents=True, exist_ok=True)
        (ctx / rel).write_bytes(data.encode() if isinstance(data, str) else data)
    return ctx


def build(store: ImageStore, ctx: Path, **options: object) -> BuildResult:
    return Builder(store, BuildOptions(context=ctx, tags=("copytest:1",), **options), io.StringIO()).build()  # type: ignore[arg-type]


def tarball(files: dict[str, str]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        for name, text in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.uid = len(text), 7
            tar.addfile(info, io.BytesIO(text.encode()))
    return gzip.compress(out.getvalue())


def test_copy_and_add_follow_dockers_rules(store: ImageStore, tmp_path: Path) -> None:
    ctx = context(tmp_path, f"""FROM {BASE}
WORKDIR /app
COPY src/ ./
COPY --chown=app a.txt b.txt sub/
COPY *.cfg /etc/cfg/
COPY tool /bin/
COPY --chmod=700 run.sh /usr/local/bin/run
ADD archive.tar.gz /opt/
COPY a.txt /opt/renamed.txt
""", {"src/index.js": "js", "src/lib/util.js": "util", "a.txt": "a", "b.txt": "b", "x.cfg": "x", "y.cfg": "y",
      "tool": "#!/bin/sh\n", "run.sh": "run", "archive.tar.gz": tarball({"inside/f.txt": "f"}),
      "ignored.cfg": "no", ".dockerignore": "ignored.cfg\n"})
    result = build(store, ctx)
    files = layer_members(store, "copytest:1")
    assert files["app/index.js"].size == 2 and files["app/lib/util.js"].isreg()  # a directory's contents
    assert (files["app/sub/a.txt"].uid, files["app/sub/a.txt"].gid) == (1000, 1001)  # name -> primary group
    assert (files["app/index.js"].uid, files["app/index.js"].gid) == (0, 0)
    assert {"etc/cfg/x.cfg", "etc/cfg/y.cfg"} <= set(files) and "etc/cfg/ignored.cfg" not in files
    assert "usr/bin/tool" in files and "bin/tool" not in files  # /bin is a symlink in the image
    assert files["usr/local/bin/run"].mode == 0o700
    assert files["opt/inside/f.txt"].uid == 7  # ADD extracts the archive with its owners
    assert files["opt"].mode == 0o700 and files["opt"].uid == 1000  # existing parents keep their metadata
    assert files["opt/renamed.txt"].size == 1  # no trailing slash: the file's new name
    assert result.steps == 8 and result.cached == 0


def test_arg_scoping_and_substitution(store: ImageStore, tmp_path: Path) -> None:
    ctx = context(tmp_path, f"""ARG BASE={BASE}
ARG GLOBAL=g
FROM $BASE AS first
ARG GLOBAL
ARG LOCAL=l-$GLOBAL
ENV A=$LOCAL B=${{GLOBAL}} C=${{UNDECLARED:-unset}} D=${{TARGETOS:-no}}
ENV E="$A and $B" LEGACY_PLATFORM_ARG=$BUILDPLATFORM
FROM ${{BASE}} AS second
ENV LOCAL=${{LOCAL:-gone}}
ARG TARGETOS
LABEL os=$TARGETOS
""", {})
    build(store, ctx, target="first", build_args={"GLOBAL": "over", "UNUSED": "x"})
    env = dict(e.split("=", 1) for e in store.inspect("copytest:1")["Config"]["Env"])
    assert (env["A"], env["B"], env["C"], env["D"]) == ("l-over", "over", "unset", "no")
    assert env["E"] == "l-over and over" and env["LEGACY_PLATFORM_ARG"] == ""  # not declared in the stage
    build(store, ctx)
    config = store.inspect("copytest:1")["Config"]
    assert "LOCAL=gone" in config["Env"] and config["Labels"] == {"os": "linux"}


def test_cache_reuses_layers_until_a_copied_file_changes(store: ImageStore, tmp_path: Path) -> None:
    ctx = context(tmp_path, f"FROM {BASE}\nCOPY one.txt /one.txt\nENV X=1\nCOPY two.txt /two.txt\nCOPY three /three\n",
                  {"one.txt": "1", "two.txt": "2", "three/x": "3"})
    first = build(store, ctx)
    layers = store.inspect("copytest:1")["RootFS"]["Layers"]
    again = build(store, ctx)
    assert (again.image_id, again.cached, again.steps) == (first.image_id, 3, 3)
    (ctx / "two.txt").write_text("2, changed")
    changed = build(store, ctx)
    new_layers = store.inspect("copytest:1")["RootFS"]["Layers"]
    assert changed.cached == 1 and changed.image_id != first.image_id
    assert new_layers[:2] == layers[:2] and new_layers[2] != layers[2]
    assert build(store, ctx, no_cache=True).cached == 0


@pytest.mark.parametrize(("dockerfile", "files", "message"), [
    ("FROM {base}\nENV A=1\nCOPY missing.txt /x\n", {},
     "Dockerfile:3: COPY missing.txt /x: missing.txt: file not found in the build context"),
    ("FROM {base}\nCOPY secret.txt /x\n", {"secret.txt": "s", ".dockerignore": "secret.txt"},
     "Dockerfile:2: COPY secret.txt /x: secret.txt: file not found in the build context (or excluded by .dockerignore)"),
    ("FROM {base}\nCOPY *.nothing /x/\n", {}, "Dockerfile:2: COPY *.nothing /x/: *.nothing: no files match"),
    ("FROM {base}\nCOPY a b /x\n", {"a": "", "b": ""}, "Dockerfile:2: COPY a b /x: When using COPY with more than one"),
    ("FROM {base}\nCOPY ../outside /x\n", {}, "Dockerfile:2: COPY ../outside /x: ../outside: forbidden path outside"),
    ("FROM {base}\nADD https://example.invalid/x /x\n", {}, "Dockerfile:2: ADD https://example.invalid/x /x: ADD https"),
    ("FROM {base}\nCOPY --chown=nobody a /x\n", {"a": ""}, "unable to find user nobody"),
    ("FROM {base} AS first\nCOPY --from=later a /x\nFROM {base} AS later\nFROM first\n", {"a": ""},
     "Dockerfile:2: COPY --from=later: a stage can only copy from stages before it"),
    ("FROM nothere:1\n", {}, "Dockerfile:1: nothere:1: no such image in the local store (docker.io/library/nothere:1)"),
    ("FROM {base}\nEXPOSE 80/tcpx\n", {}, "Dockerfile:2: EXPOSE 80/tcpx: EXPOSE 80/tcpx: invalid port"),
    ("FROM {base}\nENV A=${{B\n", {}, "Dockerfile:2: ENV A=${B: syntax error: missing '}'"),
])
def test_errors_name_the_line_and_the_file(store: ImageStore, tmp_path: Path, dockerfile: str,
                                           files: dict[str, str | bytes], message: str) -> None:
    with pytest.raises(BuildError) as info:
        build(store, context(tmp_path, dockerfile.format(base=BASE), files))
    assert message in str(info.value), str(info.value)


def test_target_must_exist_and_unneeded_stages_are_skipped(store: ImageStore, tmp_path: Path) -> None:
    ctx = context(tmp_path, f"FROM nothere AS broken\nFROM {BASE} AS good\nENV OK=1\n", {})
    assert build(store, ctx, target="good").steps == 0  # `broken` is never built
    with pytest.raises(BuildError, match="target stage 'nope' could not be found"):
        build(store, ctx, target="nope")


def test_metadata_instructions_set_the_config(store: ImageStore, tmp_path: Path) -> None:
    ctx = context(tmp_path, f"""FROM {BASE} AS base
ONBUILD RUN echo later
FROM base
LABEL version="1.0" description='a "demo"'
EXPOSE 8080 53/udp 9000-9001
VOLUME ["/data"]
VOLUME /logs /cache
SHELL ["/bin/bash", "-c"]
ENTRYPOINT exec server
STOPSIGNAL SIGQUIT
HEALTHCHECK --interval=30s --timeout=5s --retries=3 CMD ["/bin/check", "--quick"]
USER 1000:1000
MAINTAINER someone
""", {})
    build(store, ctx)
    info = store.inspect("copytest:1")
    config = info["Config"]
    assert config["Labels"] == {"version": "1.0", "description": 'a "demo"'}
    assert sorted(config["ExposedPorts"]) == ["53/udp", "8080/tcp", "9000/tcp", "9001/tcp"]
    assert sorted(config["Volumes"]) == ["/cache", "/data", "/logs"]
    assert config["Entrypoint"] == ["/bin/bash", "-c", "exec server"] and "Cmd" not in config  # inherited CMD cleared
    assert config["StopSignal"] == "SIGQUIT" and config["User"] == "1000:1000" and config["Shell"] == ["/bin/bash", "-c"]
    assert config["Healthcheck"] == {"Test": ["CMD", "/bin/check", "--quick"], "Interval": 30 * 10**9,
                                     "Timeout": 5 * 10**9, "Retries": 3}
    assert "OnBuild" not in config  # the triggers of a base are consumed, not inherited
    assert all(h.get("empty_layer") for h in info["History"][1:])
    parent = Builder(store, BuildOptions(context=ctx, target="base", tags=("onbuild:1",)), io.StringIO())
    parent.build()
    assert store.inspect("onbuild:1")["Config"]["OnBuild"] == ["RUN echo later"]


def test_cli_build_and_builder_prune(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from kubelite.cli.main import main

    ctx = context(tmp_path, "FROM scratch\nCOPY hello.txt /\nCMD [\"/hello.txt\"]\n", {"hello.txt": "hi"})
    data = ["--data-dir", str(tmp_path / "data")]
    assert main(["image", "build", *data, "-t", "cli:1", str(ctx)]) == 0
    out = capsys.readouterr().out
    assert "#2 [2/2] COPY hello.txt /" in out and "naming to docker.io/library/cli:1 done" in out
    assert main(["image", "build", *data, "-q", str(ctx)]) == 0
    assert capsys.readouterr().out.startswith("sha256:")
    assert main(["image", "builder-prune", *data]) == 0
    assert "Deleted 2 build cache entries" in capsys.readouterr().out
    assert main(["image", "build", *data, "-t", "cli:1", str(ctx)]) == 0
    assert "(0/1 steps cached)" in capsys.readouterr().out
    assert main(["image", "build", *data, "-t", "Bad:Name", str(ctx)]) == 1
    assert "error: -t Bad:Name: invalid reference format" in capsys.readouterr().err


def test_symlinks_never_lead_out_of_the_context(store: ImageStore, tmp_path: Path) -> None:
    ctx = context(tmp_path, f"FROM {BASE}\nCOPY link.txt /copied.txt\nCOPY dir/ /dir/\n",
                  {"a.txt": "inside", "dir/real.txt": "r"})
    (ctx / "link.txt").symlink_to("a.txt")
    (ctx / "dir/inner-link").symlink_to("../a.txt")
    (ctx / "escape").symlink_to("/etc")
    build(store, ctx)
    files = layer_members(store, "copytest:1")
    assert files["copied.txt"].isreg() and files["copied.txt"].size == len("inside")  # a named link is followed
    assert files["dir/inner-link"].issym() and files["dir/inner-link"].linkname == "../a.txt"  # kept inside dirs
    for line in ("COPY escape/passwd /x", "COPY */passwd /x/"):
        (ctx / "Dockerfile").write_text(f"FROM {BASE}\n{line}\n")
        with pytest.raises(BuildError, match="Dockerfile:2: .*(file not found|no files match)"):
            build(store, ctx)
