"""Older kubectl clients (1.30-1.33) against kubelite.

This machine's /usr/bin/kubectl is the Cloud SDK dispatcher, which bundles real clients
`kubectl.1.NN` beside itself; we run those directly (the dispatcher would pick one by our /version).
1.30/1.31 send JSON bodies, 1.32/1.33 protobuf.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.integration.conftest import ServerThread

SDK_BIN = Path("/usr/lib/google-cloud-sdk/bin")
VERSIONS = ("1.30", "1.31", "1.32", "1.33")


def old_kubectl(version: str) -> Path:
    path = SDK_BIN / f"kubectl.{version}"
    if not path.exists():
        pytest.skip(f"kubectl {version} is not on this machine ({path}); the pinned kubectl covers the rest")
    return path


@pytest.mark.parametrize("version", VERSIONS)
def test_tutorial_verbs_with_older_kubectl(server: ServerThread, ns: str, version: str) -> None:
    binary = old_kubectl(version)
    cache = server.config.data_dir / f"cache-{version}"

    def run(*args: str, input: str | None = None) -> str:
        result = subprocess.run([str(binary), f"--kubeconfig={server.kubeconfig}", f"--cache-dir={cache}",
                                 "-n", ns, *args], input=input, capture_output=True, text=True, timeout=60,
                                env={**os.environ, "HOME": str(server.config.data_dir)})
        assert result.returncode == 0, f"kubectl {version} {args}: {result.stdout}{result.stderr}"
        return result.stdout

    assert f"Client Version: v{version}" in subprocess.run(
        [str(binary), "version", "--client"], capture_output=True, text=True).stdout
    assert run("create", "deployment", "hello", "--image=bootcamp:v1", "--replicas=2").strip() == \
        "deployment.apps/hello created"
    assert run("create", "service", "nodeport", "hello", "--tcp=8080:8080").strip() == "service/hello created"
    assert "hello   0/2" in run("get", "deployments")
    assert run("scale", "deployment/hello", "--replicas=3").strip() == "deployment.apps/hello scaled"
    assert run("set", "image", "deployment/hello", "bootcamp=bootcamp:v2").strip() == \
        "deployment.apps/hello image updated"
    assert "configmap/cfg created" in run("apply", "-f", "-", input="apiVersion: v1\nkind: ConfigMap\n"
                                                                     "metadata: {name: cfg}\ndata: {a: '1'}\n")
    deploy = json.loads(run("get", "deployment", "hello", "-o", "json"))
    assert deploy["spec"]["replicas"] == 3
    assert deploy["spec"]["template"]["spec"]["containers"][0]["image"] == "bootcamp:v2"
    assert "NodePort" in run("get", "svc", "hello")
    assert 'deployment.apps "hello" deleted' in run("delete", "deployment", "hello")
