"""`kubelite image build` end to end (root: runc, overlay mounts): a multi-stage Dockerfile with RUN,
COPY --from, ENV, WORKDIR, USER, ENTRYPOINT/CMD builds, its image runs with the expected files, user
and environment, a rebuild reuses every layer, a changed file rebuilds only what follows it, and
bad input fails naming the line, the file, or the command and its exit code. Also a base image
from a .deb made on the spot (`kubelite image base`), nothing downloaded."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from kubelite.agent.runtime.runc.rootfs import mounts_under
from kubelite.cli.main import main
from kubelite.images.build import runner
from kubelite.images.build.rootview import RootView
from kubelite.images.store import ImageStore
from kubelite.images.testimages import ensure_test_images
from tests.e2e.images_fixtures import require

pytestmark = pytest.mark.e2e

DOCKERFILE = """# syntax=docker/dockerfile:1
ARG GREETING=hello
FROM busybox AS build
ARG GREETING
WORKDIR /src
COPY app/data.txt ./
RUN echo "$GREETING from the build stage" > greeting.txt \\
 && rm /etc/group \\
 && ls /sys/class/net > net.txt

FROM busybox
ENV APP_HOME=/app MODE=production
WORKDIR $APP_HOME
COPY --from=build /src/greeting.txt /src/net.txt ./
COPY --chown=65534:65534 app/run.sh bin/
RUN chmod 755 bin/run.sh && echo "app:x:1234:1234::/app:/bin/sh" >> /etc/passwd
USER app
ENTRYPOINT ["/bin/sh", "/app/bin/run.sh"]
CMD ["world"]
"""
RUN_SH = 'echo "hi $1: uid=$(id -u) cwd=$(pwd) mode=$MODE"\ncat /app/greeting.txt\n'


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    require("runc", "mount", "umount")
    ensure_test_images(ImageStore(tmp_path / "data" / "images"))
    return tmp_path / "data"


def write_context(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return root


def build(capsys: pytest.CaptureFixture[str], data_dir: Path, *args: str) -> tuple[int, str, str]:
    code = main(["image", "build", "--data-dir", str(data_dir), *args])
    out, err = capsys.readouterr()
    return code, out, err


def run_image(store: ImageStore, ref: str, scratch: Path) -> tuple[int, list[str]]:
    """The image's default command, as a container runtime would start it, through the build runner."""
    image = store.get(ref)
    config = image.config["config"]
    lines: list[str] = []
    request = runner.RunRequest(image.layer_dirs, [*config.get("Entrypoint", []), *config.get("Cmd", [])],
                                config["Env"], config.get("User", ""), config.get("WorkingDir", "/"), "none", scratch)
    try:
        code, _ = runner.run(request, lines.append)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return code, lines


def test_multi_stage_build_runs_and_caches(data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ctx = write_context(tmp_path / "ctx", {"Dockerfile": DOCKERFILE, "app/run.sh": RUN_SH, "app/data.txt": "v1"})
    code, out, err = build(capsys, data_dir, "-t", "demo:1", "--build-arg", "GREETING=howdy", str(ctx))
    assert code == 0, err
    assert "#4 [build 4/4] RUN echo" in out and "[stage-1 5/5] RUN chmod 755" in out
    store = ImageStore(data_dir / "images")
    info = store.inspect("demo:1")
    config = info["Config"]
    assert config["User"] == "app" and config["WorkingDir"] == "/app"
    assert config["Entrypoint"] == ["/bin/sh", "/app/bin/run.sh"] and config["Cmd"] == ["world"]
    assert "MODE=production" in config["Env"] and not any(e.startswith("GREETING") for e in config["Env"])
    view = RootView(store.get("demo:1").layer_dirs)
    assert view.read_text("/app/greeting.txt") == "howdy from the build stage\n"
    assert view.read_text("/app/net.txt") == "lo\n"  # RUN has no network but loopback
    assert view.lstat("app/bin/run.sh").st_uid == 65534  # type: ignore[union-attr]
    assert "app:x:1234" in (view.read_text("/etc/passwd") or "")
    assert view.exists("/etc/group")  # deleted only in the build stage
    assert not view.exists("/app/data.txt") and not view.exists("/proc/cpuinfo")
    assert [h.get("empty_layer", False) for h in info["History"][1:]] == [True, False, False, False, False, True,
                                                                         True, True]
    code, lines = run_image(store, "demo:1", tmp_path / "run")
    assert code == 0 and lines == ["hi world: uid=1234 cwd=/app mode=production", "howdy from the build stage"]

    # unchanged: every step from the cache, the same image
    code, again, _ = build(capsys, data_dir, "-t", "demo:1", "--build-arg", "GREETING=howdy", str(ctx))
    assert code == 0 and again.count("CACHED") == 7 and "(7/7 steps cached)" in again, again
    assert store.inspect("demo:1")["Id"] == info["Id"]

    # one copied file changes: the steps before it keep their layers, the ones after are redone
    (ctx / "app/run.sh").write_text(RUN_SH.replace("hi", "hello"))
    code, changed, _ = build(capsys, data_dir, "-t", "demo:1", "--build-arg", "GREETING=howdy", str(ctx))
    assert code == 0 and "(5/7 steps cached)" in changed, changed  # the build stage, WORKDIR, COPY --from
    layers = store.inspect("demo:1")["RootFS"]["Layers"]
    assert layers[:3] == info["RootFS"]["Layers"][:3] and layers[3:] != info["RootFS"]["Layers"][3:]
    assert run_image(store, "demo:1", tmp_path / "run2")[1][0].startswith("hello world")
    assert mounts_under(data_dir) == [] and not (data_dir / "images" / "build-tmp").exists()


@pytest.mark.parametrize(("dockerfile", "files", "message"), [
    ("FROM busybox\nRUN true\n\n# a comment\nCOPPY a b\n", {}, "error: Dockerfile:5: unknown instruction: COPPY (did you mean COPY?)"),
    ("FROM busybox\nWORKDIR /x\nCOPY nothere.txt ./\n", {}, "error: Dockerfile:3: COPY nothere.txt ./: nothere.txt: file not found in the build context"),
    ("FROM busybox\nRUN echo before && \\\n  exit 3\n", {}, 'error: Dockerfile:2: process "/bin/sh -c echo before &&   exit 3" did not complete successfully: exit code: 3'),
    ("FROM busybox\nRUN [\"/nonexistent\"]\n", {}, 'error: Dockerfile:2: process "/nonexistent" did not complete successfully'),
    ("FROM busybox\nUSER ghost\nRUN true\n", {}, "error: Dockerfile:3: RUN true: unable to find user ghost"),
])
def test_bad_input_is_named(data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], dockerfile: str,
                            files: dict[str, str], message: str) -> None:
    ctx = write_context(tmp_path / "ctx", {"Dockerfile": dockerfile, **files})
    code, out, err = build(capsys, data_dir, str(ctx))
    assert code == 1 and err.startswith(message), err
    assert "Traceback" not in err and mounts_under(data_dir) == []


def test_run_failure_streams_its_output(data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ctx = write_context(tmp_path / "ctx", {"Dockerfile": "FROM busybox\nRUN echo visible-output; exit 7\n"})
    code, out, err = build(capsys, data_dir, str(ctx))
    assert code == 1 and "visible-output" in out and "exit code: 7" in err


def make_deb(tmp_path: Path) -> Path:
    """A tiny package with one program and no shell, made here (nothing is downloaded)."""
    root = tmp_path / "pkg"
    (root / "DEBIAN").mkdir(parents=True)
    (root / "usr/bin").mkdir(parents=True)
    (root / "DEBIAN/control").write_text("Package: kubelite-hello\nVersion: 1.0\nArchitecture: all\n"
                                         "Maintainer: tests <t@example.invalid>\nDescription: test package\n")
    (root / "usr/bin/kubelite-hello").write_text("#!/bin/sh\necho hello from the package\n")
    (root / "usr/bin/kubelite-hello").chmod(0o755)
    deb = tmp_path / "kubelite-hello_1.0_all.deb"
    subprocess.run(["dpkg-deb", "--build", "--root-owner-group", str(root), str(deb)], check=True, capture_output=True)
    return deb


def test_base_image_from_a_deb(data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    if shutil.which("dpkg-deb") is None:
        pytest.fail("dpkg-deb not found: apt-get install dpkg")
    deb = make_deb(tmp_path)
    code = main(["image", "base", "--data-dir", str(data_dir), "hello-base:1", "--from-deb", str(deb)])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "adding /bin/busybox as /bin/sh" in out and "docker.io/library/hello-base:1 sha256:" in out
    ctx = write_context(tmp_path / "ctx", {"Dockerfile": "FROM hello-base:1\nRUN kubelite-hello > /greeting\n"
                                                         "CMD [\"cat\", \"/greeting\"]\n"})
    code, out, err = build(capsys, data_dir, "-t", "from-base:1", str(ctx))
    assert code == 0, err
    store = ImageStore(data_dir / "images")
    history = json.dumps(store.inspect("hello-base:1")["History"])
    assert "kubelite-hello 1.0" in history
    assert run_image(store, "from-base:1", tmp_path / "run") == (0, ["hello from the package"])


def test_heredocs_network_and_replaced_directories(data_dir: Path, tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    dockerfile = """FROM kubelite/httpd
ENV WHO=heredoc
RUN <<EOF
echo one > /one.txt
echo "$WHO" >> /one.txt
EOF
COPY <<EOT /etc/motd
welcome $WHO
EOT
RUN <<SCRIPT
#!/bin/sh -e
echo "shebang $0" > /script.txt
SCRIPT
RUN --network=host ls /sys/class/net > /host-net.txt
RUN rm -rf /www && mkdir /www && echo new > /www/index.html
"""
    ctx = write_context(tmp_path / "ctx", {"Dockerfile": dockerfile})
    code, out, err = build(capsys, data_dir, "-t", "extras:1", str(ctx))
    assert code == 0, err
    store = ImageStore(data_dir / "images")
    view = RootView(store.get("extras:1").layer_dirs)
    assert view.read_text("/one.txt") == "one\nheredoc\n" and view.read_text("/etc/motd") == "welcome heredoc\n"
    assert view.read_text("/script.txt") == "shebang /dev/pipes/SCRIPT\n" and not view.exists("/dev/pipes")
    assert (view.read_text("/host-net.txt") or "").split() != ["lo"]  # the host's interfaces
    assert view.listdir("www") == ["index.html"]  # the old /www (and its cgi-bin) is hidden: opaque
    assert view.read_text("/www/index.html") == "new\n"
