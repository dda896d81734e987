"""OpenAPI v2/v3 as kubectl reads them: `kubectl explain`, `kubectl get --raw /openapi/...`, the
field-validation query-param check and apply's strategic-merge patch metadata, against the real API
server in-process (plain HTTP, free port, per-test kubectl cache). The HTTP contract (hash pinning,
ETag, 301/304/405/406) and the document shapes are checked by calling `serve_openapi` directly.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import os
import re
import shutil
import socket
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import make_mocked_request

from kubelite.api.openapi import serve_openapi
from kubelite.api.openapi.documents import _CACHE, document, group_version_keys
from kubelite.cluster.config import ServerConfig
from kubelite.cluster.server import ServerRuntime
from kubelite.objects.errors import MethodNotAllowed, NotAcceptable, NotFound
from kubelite.objects.registry import REGISTRY, Registry

KUBECTL = shutil.which("kubectl", path=str(Path(sys.executable).parent)) or "kubectl"
PROTO_V2 = "application/com.github.proto-openapi.spec.v2@v1.0+protobuf"
HASH = re.compile(r"^[0-9A-F]{128}$")
GROUP_VERSIONS = {"api/v1", "apis/apps/v1", "apis/coordination.k8s.io/v1", "apis/discovery.k8s.io/v1",
                  "apis/events.k8s.io/v1"}


# -- serve_openapi directly ---------------------------------------------------------------------------

async def call(path: str, method: str = "GET", **headers: str) -> web.Response:
    url = path
    request = make_mocked_request(method, url, headers=headers)
    response = await serve_openapi(request, REGISTRY, request.path)
    assert isinstance(response, web.Response)
    return response


def body(response: web.Response) -> Any:
    assert isinstance(response.body, bytes)
    return json.loads(response.body)


async def index() -> dict[str, str]:
    return {k: v["serverRelativeURL"] for k, v in body(await call("/openapi/v3"))["paths"].items()}


async def test_v3_index_lists_every_group_version() -> None:
    paths = await index()
    assert set(paths) == GROUP_VERSIONS == set(group_version_keys(REGISTRY))
    for key, url in paths.items():
        prefix, _, digest = url.partition("?hash=")
        assert prefix == f"/openapi/v3/{key}" and HASH.match(digest), url


async def test_hash_pins_content() -> None:
    url = (await index())["apis/apps/v1"]
    current = await call(url)
    assert current.status == 200 and current.content_type == "application/json"
    assert current.headers["Cache-Control"] == "public, immutable" and "Expires" in current.headers
    assert current.headers["Etag"] == f'"{url.rpartition("=")[2]}"'
    assert body(current)["openapi"] == "3.0.0"

    stale = await call("/openapi/v3/apis/apps/v1?hash=0123ABCD")
    assert stale.status == 301 and stale.headers["Location"] == url

    unpinned = await call("/openapi/v3/apis/apps/v1")
    assert unpinned.status == 200 and "Cache-Control" not in unpinned.headers

    revalidated = await call("/openapi/v3/apis/apps/v1", **{"If-None-Match": current.headers["Etag"]})
    assert revalidated.status == 304 and not revalidated.body


async def test_large_documents_go_gzipped_to_clients_that_accept_it() -> None:
    plain = await call("/openapi/v3/api/v1")
    zipped = await call("/openapi/v3/api/v1", **{"Accept-Encoding": "gzip"})
    assert zipped.headers["Content-Encoding"] == "gzip"
    assert isinstance(zipped.body, bytes) and gzip.decompress(zipped.body) == plain.body


async def test_v2_negotiates_json_or_protobuf() -> None:
    swagger = body(await call("/openapi/v2", Accept="application/json, */*"))
    assert swagger["swagger"] == "2.0" and "io.k8s.api.apps.v1.Deployment" in swagger["definitions"]
    proto = await call("/openapi/v2", Accept=PROTO_V2)  # what client-go sends, and all it sends
    assert proto.content_type == "application/com.github.proto-openapi.spec.v2.v1.0+protobuf"
    assert isinstance(proto.body, bytes) and proto.body.startswith(b"\x0a\x032.0")
    with pytest.raises(NotAcceptable):
        await call("/openapi/v2", Accept="text/html")
    with pytest.raises(NotAcceptable):
        await call("/openapi/v3/api/v1", Accept="application/com.github.proto-openapi.spec.v3.v1.0+protobuf")


def fields(buf: bytes) -> Iterator[tuple[int, int | bytes]]:
    """Top-level (field number, value) pairs of a protobuf message; enough to read gnostic's."""
    pos = 0

    def varint() -> int:
        nonlocal pos
        value = shift = 0
        while True:
            byte = buf[pos]
            pos += 1
            value |= (byte & 0x7F) << shift
            shift += 7
            if byte < 0x80:
                return value

    while pos < len(buf):
        key = varint()
        if key & 7 == 0:
            yield key >> 3, varint()
        else:
            assert key & 7 == 2, f"unexpected wire type in {key}"
            size = varint()
            yield key >> 3, buf[pos:pos + size]
            pos += size


def repeated(buf: bytes, number: int) -> list[bytes]:
    return [value for n, value in fields(buf) if n == number and isinstance(value, bytes)]


def named(buf: bytes) -> tuple[str, bytes]:
    """A gnostic Named* message: {1 name, 2 value}."""
    return repeated(buf, 1)[0].decode(), repeated(buf, 2)[0]


def test_v2_protobuf_carries_the_same_definitions_and_paths() -> None:
    swagger = json.loads(document(REGISTRY, "v2").body)
    pb = document(REGISTRY, "v2.pb").body
    assert repeated(pb, 1) == [b"2.0"]
    definitions = dict(named(entry) for entry in repeated(repeated(pb, 9)[0], 1))
    assert list(definitions) == list(swagger["definitions"])
    extensions = dict(named(entry) for entry in repeated(definitions["io.k8s.api.apps.v1.Deployment"], 31))
    gvk_yaml = repeated(extensions["x-kubernetes-group-version-kind"], 2)[0]  # Any{2 yaml}
    assert json.loads(gvk_yaml) == [{"group": "apps", "kind": "Deployment", "version": "v1"}]
    paths = [named(entry)[0] for entry in repeated(repeated(pb, 8)[0], 2)]
    assert paths == list(swagger["paths"])


@pytest.mark.parametrize("path", ["/openapi", "/openapi/v4", "/openapi/v3/apis/nope/v1", "/openapi/v3/apis/apps",
                                  "/openapi/v3/apis/apps/v2"])
async def test_unknown_paths_are_not_found(path: str) -> None:
    with pytest.raises(NotFound):
        await call(path)


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE"])
async def test_writes_are_not_allowed(method: str) -> None:
    with pytest.raises(MethodNotAllowed) as caught:
        await call("/openapi/v3", method)
    assert caught.value.code == 405 and caught.value.to_status()["reason"] == "MethodNotAllowed"


async def test_documents_are_built_on_first_request_then_cached() -> None:
    registry = Registry()
    assert registry not in _CACHE
    request = make_mocked_request("GET", "/openapi/v3")
    await serve_openapi(request, registry, "/openapi/v3")
    built = _CACHE[registry]
    assert set(built) == {"v3", *GROUP_VERSIONS}  # the index pins every group-version's hash; no v2 yet
    assert document(registry, "api/v1") is built["api/v1"]
    assert all(doc.build_seconds < 5 for doc in built.values())


# -- document shapes ----------------------------------------------------------------------------------

def walk(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from walk(value)


def v3(key: str) -> dict[str, Any]:
    return json.loads(document(REGISTRY, key).body)  # type: ignore[no-any-return]


def query_params(op: dict[str, Any]) -> set[str]:
    return {p["name"] for p in op.get("parameters", []) if p["in"] == "query"}


def ops_for(doc: dict[str, Any], kind: str) -> dict[str, list[dict[str, Any]]]:
    found: dict[str, list[dict[str, Any]]] = {}
    for item in doc["paths"].values():
        for method, op in item.items():
            if method != "parameters" and op.get("x-kubernetes-group-version-kind", {}).get("kind") == kind:
                found.setdefault(method, []).append(op)
    return found


@pytest.mark.parametrize("key", sorted(GROUP_VERSIONS))
def test_v3_document_is_self_contained_and_upstream_shaped(key: str) -> None:
    doc = v3(key)
    schemas = doc["components"]["schemas"]
    for node in walk(doc):
        ref = node.get("$ref")
        if ref is not None:
            assert ref.startswith("#/components/schemas/") and ref.rpartition("/")[2] in schemas, ref
            assert set(node) == {"$ref"}, f"a ref with siblings must be wrapped in allOf: {node}"
        types = node.get("type", [])
        assert "null" not in (types if isinstance(types, list) else [types]), node
    for name, schema in schemas.items():
        for field in ("apiVersion", "kind"):
            assert "enum" not in schema.get("properties", {}).get(field, {}), name


@pytest.mark.parametrize("key", sorted(GROUP_VERSIONS))
def test_every_kind_has_its_gvk_and_validating_writes(key: str) -> None:
    doc = v3(key)
    group, version = group_version_keys(REGISTRY)[key]
    for rt in REGISTRY.in_group_version(group, version):
        gvks = doc["components"]["schemas"][rt.definition]["x-kubernetes-group-version-kind"]
        assert {"group": group, "version": version, "kind": rt.kind} in gvks
        ops = ops_for(doc, rt.kind)
        for method in ("post", "put", "patch"):
            for op in ops.get(method, []):
                assert {"fieldValidation", "dryRun", "fieldManager"} <= query_params(op), op["operationId"]
        for op in ops.get("patch", []):
            assert "application/strategic-merge-patch+json" in op["requestBody"]["content"]
            assert "force" in query_params(op)
        assert ("patch" in ops) == ("patch" in rt.verbs), rt.kind


def test_v3_special_types() -> None:
    schemas = v3("api/v1")["components"]["schemas"]
    assert schemas["io.k8s.apimachinery.pkg.util.intstr.IntOrString"]["oneOf"] == [{"type": "integer"},
                                                                                     {"type": "string"}]
    assert schemas["io.k8s.apimachinery.pkg.util.intstr.IntOrString"]["format"] == "int-or-string"
    assert schemas["io.k8s.apimachinery.pkg.api.resource.Quantity"]["oneOf"] == [{"type": "string"},
                                                                                  {"type": "number"}]
    assert schemas["io.k8s.apimachinery.pkg.apis.meta.v1.Time"]["format"] == "date-time"
    ports = schemas["io.k8s.api.core.v1.Container"]["properties"]["ports"]
    assert ports["x-kubernetes-patch-merge-key"] == "containerPort" and ports["type"] == "array"
    metadata = schemas["io.k8s.api.core.v1.Pod"]["properties"]["metadata"]
    assert metadata["allOf"] == [{"$ref": "#/components/schemas/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"}]
    assert "description" in metadata


def test_v3_subresources() -> None:
    apps = v3("apis/apps/v1")
    scale = apps["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}/scale"]
    assert scale["patch"]["x-kubernetes-group-version-kind"] == {"group": "autoscaling", "kind": "Scale",
                                                                 "version": "v1"}
    assert "io.k8s.api.autoscaling.v1.Scale" in apps["components"]["schemas"]
    core = v3("api/v1")["paths"]
    eviction = core["/api/v1/namespaces/{namespace}/pods/{name}/eviction"]["post"]
    assert eviction["x-kubernetes-group-version-kind"]["group"] == "policy"
    assert eviction["operationId"] == "createCoreV1NamespacedPodEviction"
    log = core["/api/v1/namespaces/{namespace}/pods/{name}/log"]["get"]
    assert {"container", "follow", "tailLines"} <= query_params(log)
    assert core["/api/v1/namespaces/{namespace}/pods/{name}/exec"]["get"]["operationId"] == \
        "connectCoreV1GetNamespacedPodExec"


def test_swagger_shape() -> None:
    swagger = json.loads(document(REGISTRY, "v2").body)
    definitions = swagger["definitions"]
    for node in walk(swagger):
        ref = node.get("$ref")
        if ref is not None:
            assert ref.startswith("#/definitions/") and ref.rpartition("/")[2] in definitions, ref
    assert definitions["io.k8s.apimachinery.pkg.util.intstr.IntOrString"]["type"] == "string"
    assert definitions["io.k8s.apimachinery.pkg.util.intstr.IntOrString"]["format"] == "int-or-string"
    assert definitions["io.k8s.apimachinery.pkg.api.resource.Quantity"]["type"] == "string"
    for name, kind in [("io.k8s.api.autoscaling.v1.Scale", "Scale"),
                       ("io.k8s.apimachinery.pkg.apis.meta.v1.Status", "Status"),
                       ("io.k8s.apimachinery.pkg.apis.meta.v1.DeleteOptions", "DeleteOptions"),
                       *((rt.definition, rt.kind) for rt in REGISTRY.resources)]:
        assert kind in {g["kind"] for g in definitions[name]["x-kubernetes-group-version-kind"]}, name
    patch = swagger["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]["patch"]
    assert {"fieldValidation", "dryRun", "fieldManager", "force"} <= query_params(patch)
    assert patch["x-kubernetes-action"] == "patch"
    assert {"in": "body", "name": "body", "required": True,
            "schema": {"$ref": "#/definitions/io.k8s.apimachinery.pkg.apis.meta.v1.Patch"}} in patch["parameters"]


# -- kubectl against the real server ------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Kubectl:
    kubeconfig: Path
    cache_dir: Path
    home: Path

    async def __call__(self, *args: str, stdin: str | None = None) -> tuple[int, str, str]:
        proc = await asyncio.create_subprocess_exec(
            KUBECTL, f"--kubeconfig={self.kubeconfig}", f"--cache-dir={self.cache_dir}", *args,
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            env={**os.environ, "HOME": str(self.home)})
        out, err = await asyncio.wait_for(proc.communicate(stdin.encode() if stdin else None), 60)
        return proc.returncode or 0, out.decode(), err.decode()

    async def ok(self, *args: str, stdin: str | None = None) -> str:
        code, out, err = await self(*args, stdin=stdin)
        assert code == 0, f"kubectl {' '.join(args)} exited {code}:\n{out}\n{err}"
        return out


@pytest.fixture
async def kubectl(tmp_path: Path) -> AsyncIterator[Kubectl]:
    port = free_port()
    runtime = ServerRuntime(ServerConfig(data_dir=tmp_path / "data", datastore="memory://", port=port, tls=False,
                                          controllers="", scheduler=False))
    await runtime.start()
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(json.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": "kubelite",
        "clusters": [{"name": "kubelite", "cluster": {"server": f"http://127.0.0.1:{port}"}}],
        "contexts": [{"name": "kubelite", "context": {"cluster": "kubelite", "user": "anonymous"}}],
        "users": [{"name": "anonymous", "user": {}}],
    }))
    try:
        yield Kubectl(kubeconfig, tmp_path / "kubectl-cache", tmp_path)
    finally:
        await runtime.stop()


async def test_explain_deployment_strategy(kubectl: Kubectl) -> None:
    out = await kubectl.ok("explain", "deployment.spec.strategy")
    assert "GROUP:      apps" in out and "KIND:       Deployment" in out
    assert "FIELD: strategy <DeploymentStrategy>" in out
    assert "DeploymentStrategy describes how to replace existing pods with new ones." in out
    assert "rollingUpdate\t<RollingUpdateDeployment>" in out
    assert re.search(r"^  type\t<string>$", out, re.MULTILINE)


async def test_explain_container_ports(kubectl: Kubectl) -> None:
    out = await kubectl.ok("explain", "pods.spec.containers.ports")
    assert "FIELD: ports <[]ContainerPort>" in out
    assert "containerPort\t<integer> -required-" in out and "protocol\t<string>" in out
    out = await kubectl.ok("explain", "deployment.spec.strategy.rollingUpdate.maxSurge")
    assert "FIELD: maxSurge <IntOrString>" in out


async def test_explain_recursive_for_every_resource(kubectl: Kubectl) -> None:
    out = await kubectl.ok("explain", "svc", "--recursive")
    assert "clusterIP\t<string>" in out and "externalTrafficPolicy\t<string>" in out
    for name in (await kubectl.ok("api-resources", "-o", "name")).split():
        if name != "events.events.k8s.io":  # kubectl reads that as field path `events.k8s.io` of `events`
            await kubectl.ok("explain", name, "--recursive")
    out = await kubectl.ok("explain", "events", "--api-version=events.k8s.io/v1")
    assert "GROUP:      events.k8s.io" in out


async def test_get_raw_openapi_v3(kubectl: Kubectl) -> None:
    paths = json.loads(await kubectl.ok("get", "--raw", "/openapi/v3"))["paths"]
    assert set(paths) == GROUP_VERSIONS
    doc = json.loads(await kubectl.ok("get", "--raw", paths["apis/apps/v1"]["serverRelativeURL"]))
    assert "io.k8s.api.apps.v1.Deployment" in doc["components"]["schemas"]


async def test_get_raw_openapi_v2(kubectl: Kubectl) -> None:
    swagger = json.loads(await kubectl.ok("get", "--raw", "/openapi/v2"))
    assert swagger["swagger"] == "2.0"
    assert {rt.definition for rt in REGISTRY.resources} <= set(swagger["definitions"])


async def test_explain_from_v2_protobuf(kubectl: Kubectl) -> None:
    out = await kubectl.ok("explain", "deployment.spec.strategy", "--output", "plaintext-openapiv2")
    assert "DeploymentStrategy describes how to replace existing pods with new ones." in out
    assert "rollingUpdate\t<Object>" in out


LIST = """{"apiVersion": "v1", "kind": "List", "items": [{"apiVersion": "v1", "kind": "ConfigMap",
"metadata": {"name": "%s", "namespace": "default"}%s}]}"""


async def test_lists_are_validated_client_side_against_v2(kubectl: Kubectl) -> None:
    """kubectl's v3 check reports `kind: List` as unsupported server-side and validates it against
    the v2 protobuf document itself (what `kubectl get -o yaml | kubectl apply -f -` goes through)."""
    assert "configmap/listed created" in await kubectl.ok("create", "-f", "-", stdin=LIST % ("listed", ""))
    code, _, err = await kubectl("create", "-f", "-", stdin=LIST % ("bad", ', "bogus": 1'))
    assert code == 1 and 'unknown field "bogus" in io.k8s.api.core.v1.ConfigMap' in err


CONFIG_MAP = """{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "probe", "namespace": "default"},
"data": {"a": "b"}}"""


async def test_kubectl_finds_server_side_field_validation(kubectl: Kubectl) -> None:
    """kubectl's query-param verifier reads the v3 PATCH operation of the kind; when it finds
    `fieldValidation` it leaves validation to the server and says so in the request URL."""
    code, _, err = await kubectl("create", "-f", "-", "-v=6", stdin=CONFIG_MAP)
    assert code == 0, err
    post = next(line for line in err.splitlines() if 'verb="POST"' in line)
    assert "fieldValidation=Strict" in post
    assert "warning" not in err.lower()


DEPLOYMENT = """{"apiVersion": "apps/v1", "kind": "Deployment",
"metadata": {"name": "web", "namespace": "default", "labels": {"app": "web"}},
"spec": {"selector": {"matchLabels": {"app": "web"}}, "template": {"metadata": {"labels": {"app": "web"}},
"spec": {"containers": [{"name": "c", "image": "nginx:%s", "ports": [{"containerPort": %d}]}]}}}}"""


async def test_apply_computes_its_patch_from_v3(kubectl: Kubectl) -> None:
    """The second apply builds a strategic merge patch from the v3 schemas (merge keys behind allOf
    refs); any trouble there prints `warning: error calculating patch from openapi v3 spec`."""
    await kubectl.ok("apply", "-f", "-", stdin=DEPLOYMENT % ("1", 80))
    code, _, err = await kubectl("apply", "-f", "-", "-v=6", stdin=DEPLOYMENT % ("2", 81))
    assert code == 0 and "warning" not in err.lower(), err
    assert any('verb="PATCH"' in line and "/deployments/web" in line for line in err.splitlines())
    containers = json.loads(await kubectl.ok("get", "deploy", "web", "-o",
                                             "jsonpath={.spec.template.spec.containers}"))
    assert [(c["image"], [p["containerPort"] for p in c["ports"]]) for c in containers] == [("nginx:2", [81])]
