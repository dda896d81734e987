"""`kubelite image` verbs against a store in a temporary data dir."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kubelite.cli.main import main
from kubelite.images.testimages import LayerBuilder, build_image, write_layout


def run(capsys: pytest.CaptureFixture[str], data_dir: Path, *args: str) -> tuple[int, str, str]:
    verb, *rest = args
    code = main(["image", verb, "--data-dir", str(data_dir), *rest])
    out, err = capsys.readouterr()
    return code, out, err


def test_image_verbs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    layer = LayerBuilder().file("hello", "world").build()
    layout = write_layout(tmp_path / "layout", {"latest": build_image([layer], cmd=["cat", "/hello"])})
    data = tmp_path / "data"
    code, out, _ = run(capsys, data, "import", str(layout), "hello")
    assert code == 0 and "Imported image: docker.io/library/hello:latest (sha256:" in out
    assert run(capsys, data, "tag", "hello", "localhost:5000/hello:v1")[0] == 0
    code, out, _ = run(capsys, data, "ls")
    lines = out.splitlines()
    assert lines[0].split() == ["IMAGE", "TAG", "IMAGE", "ID", "SIZE"]
    assert [line.split()[:2] for line in lines[1:]] == [["docker.io/library/hello", "latest"],
                                                        ["localhost:5000/hello", "v1"]]
    code, out, _ = run(capsys, data, "inspect", "hello")
    [info] = json.loads(out)
    assert info["Config"]["Cmd"] == ["cat", "/hello"] and info["Layers"][0]["unpacked"]
    assert info["RepoTags"] == ["docker.io/library/hello:latest", "localhost:5000/hello:v1"]
    archive = tmp_path / "out.tar"
    assert run(capsys, data, "save", "-o", str(archive), "hello")[0] == 0
    code, out, _ = run(capsys, data, "rm", "hello", "localhost:5000/hello:v1")
    assert "Untagged: docker.io/library/hello:latest" in out and "Deleted snapshot: sha256:" in out
    assert run(capsys, data, "ls", "-q")[1] == ""
    code, out, _ = run(capsys, data, "load", "-i", str(archive))
    assert code == 0 and out == "Loaded image: docker.io/library/hello:latest\n"
    code, out, _ = run(capsys, data, "ls", "-q")
    assert out == info["Id"][7:19] + "\n"


def test_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, tmp_path, "inspect", "nothere")
    assert code == 1 and "docker.io/library/nothere:latest" in err and "not in the node's image store" in err
    code, _, err = run(capsys, tmp_path, "tag", "nothere", "Bad:Name")
    assert code == 1 and err.startswith("error: ")
    code, _, err = run(capsys, tmp_path, "import", str(tmp_path / "missing"))
    assert code == 1 and "error:" in err
