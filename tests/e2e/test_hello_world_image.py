"""The tutorial's image steps without Docker, on a two-node runc cluster made by `kubelite start`:
build a hello-world image from a Dockerfile, push it to the cluster's registry under the name a
user pushes to on the host (`localhost:<port>/hello-world:1.0`), deploy it by that name (every
node pulls it from the registry on the host), expose it and open it with `kubelite service`.

And the round trip through registries nobody here wrote: the image we build goes to Debian's
docker-registry with our client, from there to the cluster registry with skopeo, and runs under
our kubelet.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.local_fixtures import LocalCluster, http_get, running_cluster, wait_for
from tests.integration.registry_helpers import DockerRegistry

pytestmark = pytest.mark.e2e

DOCKERFILE = """\
# the tutorial's hello-world, with busybox httpd in place of node
FROM docker.io/library/busybox:latest AS base
FROM base
WORKDIR /www
COPY index.cgi cgi-bin/index.cgi
RUN chmod 755 cgi-bin/index.cgi && echo built > /www/stamp
EXPOSE 8080
CMD ["httpd", "-f", "-p", "8080", "-h", "/www"]
"""
INDEX_CGI = '#!/bin/sh\necho "Content-Type: text/plain"\necho\necho "Hello World! from $(hostname)"\n'


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    with running_cluster(tmp_path_factory.mktemp("hello")) as c:
        yield c


@pytest.fixture(scope="module")
def workstation(cluster: LocalCluster) -> Path:
    """Where the user builds: an image store of its own (not the nodes'), with busybox in it, and
    the build context."""
    store = cluster.root / "workstation"
    built = cluster.kubelite("image", "build-test-images")  # busybox, into the cluster's store
    assert built.returncode == 0, built.stderr
    saved = run_kubelite(cluster, cluster.data, "image", "save", "-o", str(cluster.root / "busybox.tar"),
                         "docker.io/library/busybox:latest")
    assert saved.returncode == 0, saved.stderr
    loaded = run_kubelite(cluster, store, "image", "load", "-i", str(cluster.root / "busybox.tar"))
    assert loaded.returncode == 0, loaded.stderr
    context = cluster.root / "hello-world"
    context.mkdir()
    (context / "Dockerfile").write_text(DOCKERFILE)
    (context / "index.cgi").write_text(INDEX_CGI)
    return store


KUBELITE = [sys.executable, "-m", "kubelite.cli.main"]


def run_kubelite(cluster: LocalCluster, data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*KUBELITE, *args, "--data-dir", str(data_dir)], capture_output=True,
                          text=True, env=cluster.env, timeout=300)


def registry_name(cluster: LocalCluster) -> str:
    return f"localhost:{cluster.registry_port}"


def deploy_and_open(cluster: LocalCluster, name: str, image: str) -> str:
    cluster.kubectl("create", "deployment", name, f"--image={image}", "--replicas=2")
    pods = cluster.running(f"app={name}", 2)
    cluster.kubectl("expose", "deployment", name, "--type=NodePort", "--port", "8080")
    url = cluster.kubelite("service", name, "--url")
    assert url.returncode == 0, url.stdout + url.stderr
    host, port = url.stdout.split()[0].removeprefix("http://").split(":")
    answer = wait_for(lambda: _get(host, int(port)), timeout=30, what=f"{name} answering")
    assert answer.startswith("Hello World! from ") and answer.split()[-1] in {p["metadata"]["name"] for p in pods}
    return str(answer)


def _get(host: str, port: int) -> str:
    try:
        return http_get(host, port, "/")
    except OSError:
        return ""


def test_build_push_deploy_from_the_cluster_registry(cluster: LocalCluster, workstation: Path) -> None:
    image = f"{registry_name(cluster)}/hello-world:1.0"
    context = cluster.root / "hello-world"
    built = run_kubelite(cluster, workstation, "image", "build", "-t", "hello-world", str(context))
    assert built.returncode == 0, built.stdout + built.stderr
    tagged = run_kubelite(cluster, workstation, "image", "tag", "hello-world", image)
    assert tagged.returncode == 0, tagged.stderr
    pushed = run_kubelite(cluster, workstation, "image", "push", image)
    assert pushed.returncode == 0, pushed.stdout + pushed.stderr
    assert "digest: sha256:" in pushed.stdout
    deploy_and_open(cluster, "hello-world", image)
    events = cluster.kubectl("get", "events", "--field-selector", "reason=Pulled")
    assert f'Successfully pulled image "{image}"' in events  # from the registry, not from a local store


def test_round_trip_through_docker_registry_and_skopeo(cluster: LocalCluster, workstation: Path) -> None:
    assert shutil.which("skopeo") and shutil.which("docker-registry"), "apt-get install -y skopeo docker-registry"
    reference = DockerRegistry(cluster.root / "docker-registry").start()
    try:
        theirs = f"{reference.host}/demo/hello-world:2.0"
        run_kubelite(cluster, workstation, "image", "tag", "hello-world", theirs)
        pushed = run_kubelite(cluster, workstation, "image", "push", theirs)
        assert pushed.returncode == 0, pushed.stdout + pushed.stderr
        ours = f"{registry_name(cluster)}/copied/hello-world:2.0"
        copied = subprocess.run(["skopeo", "copy", "--src-tls-verify=false", "--dest-tls-verify=false",
                                 f"docker://{theirs}", f"docker://{ours}"], capture_output=True, text=True,
                                timeout=120)
        assert copied.returncode == 0, copied.stderr
        deploy_and_open(cluster, "copied", ours)
    finally:
        reference.stop()
