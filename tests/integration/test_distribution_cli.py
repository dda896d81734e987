"""`kubelite image pull|push|login|logout` from the command line, an image's round trip through
our registry and Debian's docker-registry, and registry mirrors doing what registries.yaml says."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from kubelite.cli.main import main
from kubelite.images.distribution import RegistryHosts, pull, push
from kubelite.images.store import ImageStore
from kubelite.images.testimages import BUSYBOX_REF, HTTPD_REF, INDEX_HTML, ensure_test_images
from tests.integration.conftest import free_port
from tests.integration.distribution_fakes import FakeRegistry, docker_registry  # noqa: F401 - the registry fixture
from tests.integration.registry_helpers import DockerRegistry, RegistryThread


def cli(capsys: pytest.CaptureFixture[str], verb: str, data_dir: Path, *args: str) -> tuple[int, str, str]:
    code = main(["image", verb, "--data-dir", str(data_dir), *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_push_and_pull_commands(registry: DockerRegistry, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    host = registry.host
    source = tmp_path / "source"
    ensure_test_images(ImageStore(source / "images"))
    assert cli(capsys, "tag", source, "busybox", f"{host}/kl/busybox")[0] == 0
    code, out, err = cli(capsys, "push", source, f"{host}/kl/busybox")
    digest = ImageStore(source / "images").get(BUSYBOX_REF).digest
    assert (code, err) == (0, "")
    assert out.splitlines()[:2] == ["Using default tag: latest", f"The push refers to repository [{host}/kl/busybox]"]
    assert out.splitlines()[-1].startswith(f"latest: digest: {digest} size: ")

    target = tmp_path / "target"
    code, out, err = cli(capsys, "pull", target, f"{host}/kl/busybox")
    lines = out.splitlines()
    assert (code, err) == (0, "")
    assert lines[:2] == ["Using default tag: latest", "latest: Pulling from kl/busybox"]
    assert lines[2].endswith(": Pull complete")
    assert lines[-3:] == [f"Digest: {digest}", f"Status: Downloaded newer image for {host}/kl/busybox:latest",
                          f"{host}/kl/busybox:latest"]
    code, out, _ = cli(capsys, "pull", target, "-q", f"{host}/kl/busybox:latest")
    assert (code, out) == (0, f"{host}/kl/busybox:latest\n")
    code, out, _ = cli(capsys, "pull", target, f"{host}/kl/busybox:latest")
    assert f"Status: Image is up to date for {host}/kl/busybox:latest" in out

    code, _, err = cli(capsys, "pull", target, f"{host}/kl/nosuch:1")
    assert (code, err) == (1, f"error: {host}/kl/nosuch:1: not found\n")
    code, _, err = cli(capsys, "pull", target, "--platform", "linux/", f"{host}/kl/busybox")
    assert code == 1 and "expected os/arch" in err
    code, _, err = cli(capsys, "push", target, f"{host}/kl/absent:1")
    assert code == 1 and "An image does not exist locally with the tag" in err
    closed = f"127.0.0.1:{free_port()}"
    code, _, err = cli(capsys, "pull", target, f"{closed}/kl/busybox")
    assert code == 1 and f"cannot reach http://{closed}" in err and "Traceback" not in err


def test_login_and_logout(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fake = FakeRegistry(auth="bearer", users={"me": "pw"})
    data = tmp_path / "data"
    results: dict[str, tuple[int, str, str]] = {}

    async def body() -> None:
        async with fake.serve() as host:
            # main() runs its own event loop: give it a thread while this loop serves the fake
            results["bad"] = await asyncio.to_thread(cli, capsys, "login", data, host, "-u", "me", "-p", "no")
            results["good"] = await asyncio.to_thread(cli, capsys, "login", data, f"http://{host}/", "-u", "me",
                                                      "-p", "pw")
            results["host"] = (0, host, "")

    asyncio.run(body())
    host = results["host"][1]
    code, _, err = results["bad"]
    assert code == 1 and "incorrect username or password" in err
    code, out, err = results["good"]
    assert (code, out) == (0, "Login Succeeded\n") and "--password-stdin" in err
    config = data / "config.json"
    assert json.loads(config.read_text())["auths"][host]["auth"] and config.stat().st_mode & 0o077 == 0
    assert cli(capsys, "logout", data, host)[1] == f"Removing login credentials for {host}\n"
    assert json.loads(config.read_text())["auths"] == {}
    assert cli(capsys, "logout", data, host)[1] == f"Not logged in to {host}\n"


async def test_round_trip_through_both_registries(registry: DockerRegistry, tmp_path: Path) -> None:
    ours = await asyncio.to_thread(lambda: RegistryThread(tmp_path / "ours").start())
    try:
        source = ImageStore(tmp_path / "source")
        ensure_test_images(source)
        source.tag(HTTPD_REF, f"{ours.host}/kl/httpd:1.0")
        first = await push(source, f"{ours.host}/kl/httpd:1.0")
        middle = ImageStore(tmp_path / "middle")
        await pull(middle, f"{ours.host}/kl/httpd:1.0")
        middle.tag(f"{ours.host}/kl/httpd:1.0", f"{registry.host}/kl/httpd:1.0")
        second = await push(middle, f"{registry.host}/kl/httpd:1.0")
        final = await pull(ImageStore(tmp_path / "final"), f"{registry.host}/kl/httpd:1.0")
    finally:
        await asyncio.to_thread(ours.stop)
    assert first.digest == second.digest == final.digest == source.get(HTTPD_REF).digest
    assert (final.record.layer_dirs[-1] / "www/index.html").read_text() == INDEX_HTML


async def test_mirrors_serve_the_name_a_user_pushed_to(registry: DockerRegistry, tmp_path: Path) -> None:
    source = ImageStore(tmp_path / "source")
    ensure_test_images(source)
    source.tag(HTTPD_REF, f"{registry.host}/mirror/httpd:1.0")
    await push(source, f"{registry.host}/mirror/httpd:1.0")
    # the name users push to on the host; on this "node" it is only reachable through the mirror
    name = f"localhost:{free_port()}/httpd:1.0"
    hosts = RegistryHosts.from_yaml(f"mirrors:\n  {name.split('/')[0]}:\n    endpoint: ['http://{registry.host}']\n"
                                    f"    rewrite: {{'^(.*)$': 'mirror/$1'}}\n")
    result = await pull(ImageStore(tmp_path / "node"), name, hosts=hosts)
    assert result.name == name and result.digest == source.get(HTTPD_REF).digest
