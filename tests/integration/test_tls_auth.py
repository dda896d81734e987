"""TLS + authentication end to end, judged by clients we did not write: kubectl, the official
`kubernetes` Python client, and plain `ssl`/aiohttp. A tiny aiohttp app stands in for the API server.
"""

from __future__ import annotations

import asyncio
import json
import os
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from kubelite.api.auth import AllowAuthenticated, Authenticator, TokenFile, auth_middleware, current_user
from kubelite.cluster.kubeconfig import build_kubeconfig, write_kubeconfig
from kubelite.cluster.pki import Pki, ensure_pki, issue_client_cert, server_ssl_context

KUBECTL = Path("/work/venv/bin/kubectl")
TOKEN = "integration-test-token-0123456789"
VERSION = {"major": "1", "minor": "37", "gitVersion": "v1.37.0", "platform": "linux/amd64"}


@dataclass
class Server:
    url: str
    port: int
    pki: Pki
    tmp: Path

    def kubeconfig(self, name: str, **creds: Any) -> Path:
        path = self.tmp / f"{name}.kubeconfig"
        write_kubeconfig(path, build_kubeconfig(server=self.url, ca_pem=self.pki.ca_pem(), **creds))
        return path


def _app(tokens: TokenFile, port_box: list[int]) -> web.Application:
    app = web.Application(middlewares=[auth_middleware(Authenticator(tokens), AllowAuthenticated())])

    async def api(_: web.Request) -> web.Response:
        return web.json_response({"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": [
            {"clientCIDR": "0.0.0.0/0", "serverAddress": f"127.0.0.1:{port_box[0]}"}]})

    async def version(_: web.Request) -> web.Response:
        return web.json_response(VERSION)

    async def whoami(request: web.Request) -> web.Response:
        user = current_user(request)
        assert user is not None
        info = {"username": user.name, "groups": list(user.groups)} | ({"uid": user.uid} if user.uid else {})
        return web.json_response({"kind": "SelfSubjectReview", "apiVersion": "authentication.k8s.io/v1",
                                  "metadata": {"creationTimestamp": None}, "status": {"userInfo": info}},
                                 status=201)

    app.router.add_get("/api", api)
    app.router.add_get("/api/", api)  # the official Python client asks for /api/
    app.router.add_get("/version", version)
    app.router.add_post("/apis/authentication.k8s.io/v1/selfsubjectreviews", whoami)
    return app


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[Server]:
    pki = ensure_pki(tmp_path / "pki", ip_sans=[], dns_sans=[])
    tokens = TokenFile(tmp_path / "tokens.csv")
    tokens.add(TOKEN, "token-admin", ["system:masters"], uid="uid-42")
    port_box = [0]
    runner = web.AppRunner(_app(tokens, port_box))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=server_ssl_context(pki))
    await site.start()
    port = runner.addresses[0][1]
    port_box[0] = port
    try:
        yield Server(f"https://127.0.0.1:{port}", port, pki, tmp_path)
    finally:
        await runner.cleanup()


async def _kubectl(server: Server, kubeconfig: Path, *args: str) -> tuple[int, str, str]:
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(server.tmp)}
    proc = await asyncio.create_subprocess_exec(
        str(KUBECTL), "--kubeconfig", str(kubeconfig), "--cache-dir", str(server.tmp / "cache"), *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env)
    out, err = await asyncio.wait_for(proc.communicate(), timeout=60)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


def _client_ssl(pki: Pki, cert: tuple[Path, Path] | None = None) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(pki.ca_cert))
    if cert is not None:
        ctx.load_cert_chain(str(cert[0]), str(cert[1]))
    return ctx


async def _get(server: Server, path: str, ctx: ssl.SSLContext,
               headers: dict[str, str] | None = None) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as session, \
            session.get(server.url + path, ssl=ctx, headers=headers or {}) as resp:
        return resp.status, await resp.json(content_type=None)


pytestmark = pytest.mark.skipif(not KUBECTL.exists(), reason="kubectl binary not installed")


async def test_kubectl_with_admin_client_cert(server: Server) -> None:
    kc = server.kubeconfig("admin", client_cert_pem=server.pki.admin_cert_pem(),
                           client_key_pem=server.pki.admin_key_pem())
    rc, out, err = await _kubectl(server, kc, "get", "--raw", "/api")
    assert rc == 0, err
    assert json.loads(out)["versions"] == ["v1"]
    rc, out, err = await _kubectl(server, kc, "auth", "whoami", "-o", "json")
    assert rc == 0, err
    info = json.loads(out)["status"]["userInfo"]
    assert info["username"] == "kubernetes-admin"
    assert info["groups"] == ["system:masters", "system:authenticated"]


async def test_kubectl_with_token(server: Server) -> None:
    kc = server.kubeconfig("token", token=TOKEN)
    rc, out, err = await _kubectl(server, kc, "get", "--raw", "/api")
    assert rc == 0, err
    assert json.loads(out)["kind"] == "APIVersions"
    rc, out, err = await _kubectl(server, kc, "auth", "whoami", "-o", "json")
    assert rc == 0, err
    assert json.loads(out)["status"]["userInfo"] == {
        "username": "token-admin", "uid": "uid-42", "groups": ["system:masters", "system:authenticated"]}


async def test_kubectl_with_wrong_token_is_unauthorized(server: Server) -> None:
    rc, _, err = await _kubectl(server, server.kubeconfig("bad", token="wrong"), "get", "--raw", "/api")
    assert rc != 0
    assert "Unauthorized" in err


async def test_kubectl_with_node_cert(server: Server) -> None:
    cert, key = issue_client_cert(server.pki, common_name="system:node:n1", organizations=["system:nodes"])
    kc = server.kubeconfig("node", client_cert_pem=cert, client_key_pem=key, user="node")
    rc, out, err = await _kubectl(server, kc, "auth", "whoami", "-o", "json")
    assert rc == 0, err
    assert json.loads(out)["status"]["userInfo"]["username"] == "system:node:n1"


async def test_anonymous_gets_401_status_but_version_is_public(server: Server) -> None:
    ctx = _client_ssl(server.pki)
    status, body = await _get(server, "/api", ctx)
    assert status == 401
    assert body == {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                    "message": "Unauthorized", "reason": "Unauthorized", "code": 401}
    status, body = await _get(server, "/version", ctx)
    assert (status, body) == (200, VERSION)


async def test_raw_ssl_client_cert_and_token(server: Server) -> None:
    status, body = await _get(server, "/api", _client_ssl(server.pki, (server.pki.admin_cert,
                                                                       server.pki.admin_key)))
    assert status == 200 and body["kind"] == "APIVersions"
    status, _ = await _get(server, "/api", _client_ssl(server.pki), {"Authorization": f"Bearer {TOKEN}"})
    assert status == 200


async def test_alpn_negotiates_http11(server: Server) -> None:
    ctx = _client_ssl(server.pki)
    ctx.set_alpn_protocols(["h2", "http/1.1"])
    _, writer = await asyncio.open_connection("127.0.0.1", server.port, ssl=ctx, server_hostname="localhost")
    try:
        ssl_obj = writer.get_extra_info("ssl_object")
        assert ssl_obj.selected_alpn_protocol() == "http/1.1"
        assert ssl_obj.version() in ("TLSv1.2", "TLSv1.3")
    finally:
        writer.close()


async def test_client_cert_from_foreign_ca_is_rejected(server: Server, tmp_path: Path) -> None:
    foreign = ensure_pki(tmp_path / "foreign", ip_sans=[], dns_sans=[])
    ctx = _client_ssl(server.pki, (foreign.admin_cert, foreign.admin_key))
    with pytest.raises((aiohttp.ClientError, ssl.SSLError, ConnectionError)):
        await _get(server, "/api", ctx)


async def test_official_python_client_load_kube_config_with_client_cert(server: Server) -> None:
    from kubernetes import client, config  # type: ignore[import-untyped]

    kc = server.kubeconfig("admin-py", client_cert_pem=server.pki.admin_cert_pem(),
                           client_key_pem=server.pki.admin_key_pem())

    def call() -> Any:
        config.load_kube_config(config_file=str(kc))
        return client.CoreApi().get_api_versions()

    versions = await asyncio.to_thread(call)
    assert versions.versions == ["v1"]
    assert versions.server_address_by_client_cidrs[0].server_address == f"127.0.0.1:{server.port}"


async def test_official_python_client_with_token(server: Server) -> None:
    from kubernetes import client, config

    kc = server.kubeconfig("token-py", token=TOKEN)

    def call() -> Any:
        api_client = config.new_client_from_config(config_file=str(kc))
        try:
            return client.CoreApi(api_client).get_api_versions()
        finally:
            api_client.close()

    assert (await asyncio.to_thread(call)).versions == ["v1"]
