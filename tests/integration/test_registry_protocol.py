"""The registry's protocol, request by request (aiohttp client): uploads of every shape, the
error codes and what each failure leaves on disk (nothing), manifests by tag and digest,
pagination, mounts, referrers, and persistence across a restart on the same root."""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from kubelite.images.oci import OCI_INDEX, OCI_MANIFEST
from kubelite.images.registry.server import RegistryServer
from tests.integration.registry_helpers import blob_files, upload_dirs

CONFIG_TYPE = "application/vnd.oci.image.config.v1+json"
LAYER_TYPE = "application/vnd.oci.image.layer.v1.tar"


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


class Client:
    def __init__(self, server: RegistryServer, session: aiohttp.ClientSession) -> None:
        self.server = server
        self.session = session
        self.base = f"http://127.0.0.1:{server.port}"

    async def request(self, method: str, path: str, **kw: Any) -> tuple[int, dict[str, str], bytes]:
        url = path if path.startswith("http") else self.base + path
        async with self.session.request(method, url, **kw) as response:
            return response.status, dict(response.headers), await response.read()

    async def error(self, method: str, path: str, status: int, code: str, **kw: Any) -> dict[str, Any]:
        got, headers, body = await self.request(method, path, **kw)
        assert got == status, (got, body)
        assert headers["Docker-Distribution-API-Version"] == "registry/2.0"
        errors = json.loads(body)["errors"]
        assert errors and all(e["code"] == code for e in errors), errors
        return dict(headers, errors=errors)

    async def push_blob(self, name: str, data: bytes) -> str:
        digest = sha(data)
        status, headers, _ = await self.request("POST", f"/v2/{name}/blobs/uploads/?digest={digest}", data=data)
        assert status == 201 and headers["Location"] == f"/v2/{name}/blobs/{digest}"
        return digest

    async def push_image(self, name: str, tag: str, *, layer: bytes = b"layer") -> tuple[str, bytes]:
        config, layer_digest = b'{"architecture":"amd64","os":"linux"}', await self.push_blob(name, layer)
        manifest = image_manifest(await self.push_blob(name, config), len(config), layer_digest, len(layer))
        status, headers, _ = await self.request("PUT", f"/v2/{name}/manifests/{tag}", data=manifest,
                                                headers={"Content-Type": OCI_MANIFEST})
        assert status == 201, headers
        return headers["Docker-Content-Digest"], manifest


def image_manifest(config: str, config_size: int, layer: str, layer_size: int, **extra: Any) -> bytes:
    doc = {"schemaVersion": 2, "mediaType": OCI_MANIFEST,
           "config": {"mediaType": CONFIG_TYPE, "digest": config, "size": config_size},
           "layers": [{"mediaType": LAYER_TYPE, "digest": layer, "size": layer_size}], **extra}
    return json.dumps(doc).encode()


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[Client]:
    server = RegistryServer(tmp_path / "registry", [("127.0.0.1", 0)])
    await server.start()
    async with aiohttp.ClientSession() as session:
        yield Client(server, session)
    await server.stop()


async def test_version_check(client: Client) -> None:
    status, headers, body = await client.request("GET", "/v2/")
    assert (status, json.loads(body)) == (200, {})
    assert headers["Docker-Distribution-API-Version"] == "registry/2.0"


async def test_monolithic_uploads_and_blob_reads(client: Client) -> None:
    data = bytes(range(256)) * 40
    digest = await client.push_blob("a/b", data)
    status, headers, body = await client.request("GET", f"/v2/a/b/blobs/{digest}")
    assert (status, body, headers["Docker-Content-Digest"]) == (200, data, digest)
    status, headers, body = await client.request("HEAD", f"/v2/a/b/blobs/{digest}")
    assert (status, body, headers["Content-Length"], headers["Docker-Content-Digest"]) == (200, b"", str(len(data)), digest)
    status, headers, body = await client.request("GET", f"/v2/a/b/blobs/{digest}", headers={"Range": "bytes=10-19"})
    assert (status, body) == (206, data[10:20])

    # POST then PUT: a session, and the whole blob in the closing request.
    other = b"monolithic in the PUT"
    status, headers, _ = await client.request("POST", "/v2/a/b/blobs/uploads/")
    assert status == 202 and headers["Range"] == "0-0" and headers["Docker-Upload-UUID"] in headers["Location"]
    status, headers, _ = await client.request("PUT", f"{headers['Location']}?digest={sha(other)}", data=other)
    assert (status, headers["Docker-Content-Digest"]) == (201, sha(other))
    assert (await client.request("GET", f"/v2/a/b/blobs/{sha(other)}"))[2] == other
    assert upload_dirs(client.server.root) == []


async def test_chunked_upload_with_out_of_order_chunk(client: Client) -> None:
    data = b"0123456789" * 30
    status, headers, _ = await client.request("POST", "/v2/c/blobs/uploads/", headers={"Content-Length": "0"})
    location = headers["Location"]
    status, headers, _ = await client.request("PATCH", location, data=data[:100], headers={"Content-Range": "0-99"})
    assert (status, headers["Range"]) == (202, "0-99")
    location = headers["Location"]
    skipped = await client.error("PATCH", location, 416, "BLOB_UPLOAD_INVALID", data=data[200:300],
                                 headers={"Content-Range": "200-299"})
    assert skipped["Range"] == "0-99" and skipped["Location"] == location
    await client.error("PATCH", location, 416, "BLOB_UPLOAD_INVALID", data=data[:100], headers={"Content-Range": "0-99"})
    await client.error("PATCH", location, 400, "SIZE_INVALID", data=data[100:150], headers={"Content-Range": "100-199"})
    status, headers, _ = await client.request("GET", location)
    assert (status, headers["Range"]) == (204, "0-99")  # the rejected chunks left nothing behind
    status, headers, _ = await client.request("PATCH", location, data=data[100:200], headers={"Content-Range": "100-199"})
    assert (status, headers["Range"]) == (202, "0-199")
    status, headers, _ = await client.request("PUT", f"{location}?digest={sha(data)}", data=data[200:],
                                              headers={"Content-Range": "200-299"})
    assert status == 201
    assert (await client.request("GET", f"/v2/c/blobs/{sha(data)}"))[2] == data
    await client.error("GET", location, 404, "BLOB_UPLOAD_UNKNOWN")  # the session ended


async def test_streamed_patch_without_content_range(client: Client) -> None:
    """Docker and skopeo PATCH the whole blob as one stream, then PUT with no body."""
    data = b"x" * (3 << 20) + b"tail"
    status, headers, _ = await client.request("POST", "/v2/s/blobs/uploads/")

    async def body() -> AsyncIterator[bytes]:  # chunked transfer encoding: no Content-Length
        for i in range(0, len(data), 100_000):
            yield data[i:i + 100_000]

    status, headers, _ = await client.request("PATCH", headers["Location"], data=body())
    assert (status, headers["Range"]) == (202, f"0-{len(data) - 1}")
    status, headers, _ = await client.request("PUT", f"{headers['Location']}?digest={sha(data)}")
    assert status == 201
    assert blob_files(client.server.root)[sha(data)] == len(data)


async def test_bad_digest_stores_nothing(client: Client) -> None:
    await client.push_blob("d", b"something already there")
    before = blob_files(client.server.root)
    data = b"the real content"
    wrong = sha(b"other content")
    await client.error("POST", f"/v2/d/blobs/uploads/?digest={wrong}", 400, "DIGEST_INVALID", data=data)
    await client.error("POST", "/v2/d/blobs/uploads/?digest=sha256:nothex", 400, "DIGEST_INVALID", data=data)
    status, headers, _ = await client.request("POST", "/v2/d/blobs/uploads/")
    await client.error("PUT", f"{headers['Location']}?digest={wrong}", 400, "DIGEST_INVALID", data=data)
    await client.error("GET", headers["Location"], 404, "BLOB_UPLOAD_UNKNOWN")  # the upload is gone too
    assert blob_files(client.server.root) == before
    assert upload_dirs(client.server.root) == []
    await client.error("GET", f"/v2/d/blobs/{wrong}", 404, "BLOB_UNKNOWN")
    status, _, body = await client.request("HEAD", f"/v2/d/blobs/{wrong}")
    assert (status, body) == (404, b"")  # HEAD: the status alone


async def test_truncated_uploads_store_nothing(client: Client) -> None:
    data = b"z" * 100_000
    before = blob_files(client.server.root)
    # Fewer bytes than the digest implies, in one request and in a session.
    await client.error("POST", f"/v2/t/blobs/uploads/?digest={sha(data)}", 400, "DIGEST_INVALID", data=data[:60_000])
    status, headers, _ = await client.request("POST", "/v2/t/blobs/uploads/")
    await client.error("PUT", f"{headers['Location']}?digest={sha(data)}", 400, "DIGEST_INVALID", data=data[:99_999])
    # A client that promises 100000 bytes, sends 60000 and hangs up.
    reader, writer = await asyncio.open_connection("127.0.0.1", client.server.port)
    writer.write(f"POST /v2/t/blobs/uploads/?digest={sha(data)} HTTP/1.1\r\nHost: x\r\n"
                 f"Content-Length: {len(data)}\r\n\r\n".encode() + data[:60_000])
    await writer.drain()
    writer.close()
    await writer.wait_closed()
    for _ in range(100):  # the server notices the hang-up and drops the half-received upload
        if not upload_dirs(client.server.root):
            break
        await asyncio.sleep(0.05)
    assert upload_dirs(client.server.root) == []
    assert blob_files(client.server.root) == before
    await client.error("GET", f"/v2/t/blobs/{sha(data)}", 404, "BLOB_UNKNOWN")


async def test_cancel_upload(client: Client) -> None:
    status, headers, _ = await client.request("POST", "/v2/e/blobs/uploads/")
    await client.request("PATCH", headers["Location"], data=b"abc")
    status, _, _ = await client.request("DELETE", headers["Location"])
    assert status == 204 and upload_dirs(client.server.root) == []
    await client.error("PATCH", headers["Location"], 404, "BLOB_UPLOAD_UNKNOWN", data=b"more")
    await client.error("GET", "/v2/e/blobs/uploads/not-a-uuid", 404, "BLOB_UPLOAD_UNKNOWN")
    status, headers, _ = await client.request("POST", "/v2/e/blobs/uploads/")  # sessions belong to their repository
    await client.error("GET", headers["Location"].replace("/v2/e/", "/v2/other/"), 404, "BLOB_UPLOAD_UNKNOWN")


async def test_blobs_belong_to_repositories_until_mounted(client: Client) -> None:
    digest = await client.push_blob("src/repo", b"shared layer")
    await client.error("GET", f"/v2/dst/repo/blobs/{digest}", 404, "BLOB_UNKNOWN")
    status, headers, _ = await client.request("POST", f"/v2/dst/repo/blobs/uploads/?mount={digest}")
    assert status == 202 and "Docker-Upload-UUID" in headers  # no `from`: a plain session instead
    missing = sha(b"never pushed")
    status, _, _ = await client.request("POST", f"/v2/dst/repo/blobs/uploads/?mount={missing}&from=src/repo")
    assert status == 202
    status, headers, _ = await client.request("POST", f"/v2/dst/repo/blobs/uploads/?mount={digest}&from=src/repo")
    assert (status, headers["Location"], headers["Docker-Content-Digest"]) == (201, f"/v2/dst/repo/blobs/{digest}", digest)
    assert (await client.request("GET", f"/v2/dst/repo/blobs/{digest}"))[2] == b"shared layer"
    status, _, _ = await client.request("DELETE", f"/v2/dst/repo/blobs/{digest}")
    assert status == 202
    await client.error("GET", f"/v2/dst/repo/blobs/{digest}", 404, "BLOB_UNKNOWN")
    assert (await client.request("GET", f"/v2/src/repo/blobs/{digest}"))[0] == 200  # still in the source
    await client.error("DELETE", f"/v2/dst/repo/blobs/{digest}", 404, "BLOB_UNKNOWN")


async def test_manifests_by_tag_and_digest(client: Client) -> None:
    digest, manifest = await client.push_image("library/hello-world", "1.0")
    for reference in ("1.0", digest):
        status, headers, body = await client.request("GET", f"/v2/library/hello-world/manifests/{reference}",
                                                     headers={"Accept": "application/vnd.docker.distribution.manifest.v2+json"})
        assert (status, body, headers["Content-Type"], headers["Docker-Content-Digest"]) == (200, manifest, OCI_MANIFEST, digest)
        status, headers, body = await client.request("HEAD", f"/v2/library/hello-world/manifests/{reference}")
        assert (status, body, headers["Content-Length"]) == (200, b"", str(len(manifest)))
    assert digest == sha(manifest)
    status, headers, _ = await client.request("PUT", f"/v2/library/hello-world/manifests/{digest}?tag=a&tag=b",
                                              data=manifest, headers={"Content-Type": OCI_MANIFEST})
    assert status == 201 and headers["Location"] == f"/v2/library/hello-world/manifests/{digest}"
    await client.error("PUT", f"/v2/library/hello-world/manifests/{sha(b'x')}", 400, "DIGEST_INVALID",
                       data=manifest, headers={"Content-Type": OCI_MANIFEST})
    await client.error("PUT", "/v2/library/hello-world/manifests/bad", 400, "MANIFEST_INVALID",
                       data=b"{not json", headers={"Content-Type": OCI_MANIFEST})
    await client.error("GET", "/v2/library/hello-world/manifests/2.0", 404, "MANIFEST_UNKNOWN")
    await client.error("GET", f"/v2/library/hello-world/manifests/{sha(b'nope')}", 404, "MANIFEST_UNKNOWN")
    await client.error("GET", "/v2/nothing/here/manifests/1.0", 404, "MANIFEST_UNKNOWN")


async def test_manifest_with_missing_blobs_is_refused(client: Client) -> None:
    config = await client.push_blob("m", b"{}")
    layer1, layer2 = sha(b"never pushed 1"), sha(b"never pushed 2")
    doc = json.loads(image_manifest(config, 2, layer1, 14))
    doc["layers"].append({"mediaType": LAYER_TYPE, "digest": layer2, "size": 14})
    refused = await client.error("PUT", "/v2/m/manifests/1.0", 400, "MANIFEST_BLOB_UNKNOWN",
                                 data=json.dumps(doc).encode(), headers={"Content-Type": OCI_MANIFEST})
    assert [e["detail"]["digest"] for e in refused["errors"]] == [layer1, layer2]
    await client.error("GET", "/v2/m/manifests/1.0", 404, "MANIFEST_UNKNOWN")  # nothing was stored
    # A blob pushed to another repository does not count.
    await client.push_blob("elsewhere", b"never pushed 1")
    await client.error("PUT", "/v2/m/manifests/1.0", 400, "MANIFEST_BLOB_UNKNOWN",
                       data=json.dumps(doc).encode(), headers={"Content-Type": OCI_MANIFEST})


async def test_index_needs_its_manifests(client: Client) -> None:
    child, manifest = await client.push_image("multi", "amd64")
    index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
        {"mediaType": OCI_MANIFEST, "digest": child, "size": len(manifest), "platform": {"os": "linux", "architecture": "amd64"}},
        {"mediaType": OCI_MANIFEST, "digest": sha(b"arm64 manifest"), "size": 5, "platform": {"os": "linux", "architecture": "arm64"}}]}
    await client.error("PUT", "/v2/multi/manifests/latest", 400, "MANIFEST_BLOB_UNKNOWN",
                       data=json.dumps(index).encode(), headers={"Content-Type": OCI_INDEX})
    index["manifests"].pop()
    status, headers, _ = await client.request("PUT", "/v2/multi/manifests/latest", data=json.dumps(index).encode(),
                                              headers={"Content-Type": OCI_INDEX})
    assert status == 201
    status, headers, _ = await client.request("GET", "/v2/multi/manifests/latest")
    assert headers["Content-Type"] == OCI_INDEX


async def test_delete_manifest_and_tag(client: Client) -> None:
    digest, _ = await client.push_image("del/me", "1.0")
    await client.request("PUT", f"/v2/del/me/manifests/{digest}?tag=keep", data=_, headers={"Content-Type": OCI_MANIFEST})
    status, _, _ = await client.request("DELETE", "/v2/del/me/manifests/keep")  # a tag only
    assert status == 202
    assert (await client.request("GET", f"/v2/del/me/manifests/{digest}"))[0] == 200
    status, _, _ = await client.request("DELETE", f"/v2/del/me/manifests/{digest}")
    assert status == 202
    await client.error("GET", f"/v2/del/me/manifests/{digest}", 404, "MANIFEST_UNKNOWN")
    await client.error("GET", "/v2/del/me/manifests/1.0", 404, "MANIFEST_UNKNOWN")  # its tags went with it
    status, _, body = await client.request("GET", "/v2/del/me/tags/list")
    assert json.loads(body)["tags"] == []
    await client.error("DELETE", f"/v2/del/me/manifests/{digest}", 404, "MANIFEST_UNKNOWN")
    await client.error("DELETE", "/v2/no/such/manifests/1.0", 404, "NAME_UNKNOWN")


async def collect_pages(client: Client, path: str, key: str) -> tuple[list[str], int]:
    found: list[str] = []
    pages = 0
    while path:
        status, headers, body = await client.request("GET", path)
        assert status == 200
        found += json.loads(body)[key]
        pages += 1
        link = headers.get("Link", "")
        path = link[1:link.index(">")] if link else ""
        assert not link or link.endswith('rel="next"')
    return found, pages


async def test_tags_and_catalog_pagination(client: Client) -> None:
    digest, manifest = await client.push_image("pages/app", "t0")
    tags = [f"t{i}" for i in range(10)]
    query = "&".join(f"tag={t}" for t in tags)
    await client.request("PUT", f"/v2/pages/app/manifests/{digest}?{query}", data=manifest,
                         headers={"Content-Type": OCI_MANIFEST})
    assert await collect_pages(client, "/v2/pages/app/tags/list?n=3", "tags") == (sorted(tags), 4)
    assert await collect_pages(client, "/v2/pages/app/tags/list", "tags") == (sorted(tags), 1)
    assert await collect_pages(client, "/v2/pages/app/tags/list?n=4&last=t5", "tags") == (["t6", "t7", "t8", "t9"], 1)
    status, headers, body = await client.request("GET", "/v2/pages/app/tags/list?n=0")
    assert json.loads(body) == {"name": "pages/app", "tags": []} and "Link" not in headers
    await client.error("GET", "/v2/pages/app/tags/list?n=x", 400, "PAGINATION_NUMBER_INVALID")
    await client.error("GET", "/v2/pages/none/tags/list", 404, "NAME_UNKNOWN")

    for i in range(4):
        await client.push_image(f"pages/r{i}", "1")
    repos = ["pages/app", "pages/r0", "pages/r1", "pages/r2", "pages/r3"]
    assert await collect_pages(client, "/v2/_catalog?n=2", "repositories") == (repos, 3)
    assert await collect_pages(client, "/v2/_catalog", "repositories") == (repos, 1)


async def test_names_methods_and_paths(client: Client) -> None:
    await client.error("GET", "/v2/Upper/Case/tags/list", 400, "NAME_INVALID")
    await client.error("GET", "/v2/a//b/manifests/1", 400, "NAME_INVALID")
    await client.error("POST", "/v2/a/manifests/1", 405, "UNSUPPORTED")
    await client.error("GET", "/v2/a/b/unknown-endpoint", 404, "UNSUPPORTED")
    await client.error("GET", "/v2/a/blobs/sha256:short", 400, "DIGEST_INVALID")


async def test_referrers(client: Client) -> None:
    subject, _ = await client.push_image("ref/app", "1.0")
    config = await client.push_blob("ref/app", b"{}")
    sbom = {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "artifactType": "application/vnd.example.sbom",
            "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": config, "size": 2},
            "layers": [], "subject": {"mediaType": OCI_MANIFEST, "digest": subject, "size": 1},
            "annotations": {"org.example": "yes"}}
    data = json.dumps(sbom).encode()
    status, headers, _ = await client.request("PUT", f"/v2/ref/app/manifests/{sha(data)}", data=data,
                                              headers={"Content-Type": OCI_MANIFEST})
    assert status == 201 and headers["OCI-Subject"] == subject
    status, headers, body = await client.request("GET", f"/v2/ref/app/referrers/{subject}")
    assert status == 200 and headers["Content-Type"] == OCI_INDEX
    assert json.loads(body)["manifests"] == [{"mediaType": OCI_MANIFEST, "digest": sha(data), "size": len(data),
                                              "artifactType": "application/vnd.example.sbom",
                                              "annotations": {"org.example": "yes"}}]
    status, headers, body = await client.request("GET", f"/v2/ref/app/referrers/{subject}?artifactType=other")
    assert json.loads(body)["manifests"] == [] and headers["OCI-Filters-Applied"] == "artifactType"
    await client.request("DELETE", f"/v2/ref/app/manifests/{sha(data)}")
    assert json.loads((await client.request("GET", f"/v2/ref/app/referrers/{subject}"))[2])["manifests"] == []
    await client.error("GET", "/v2/ref/app/referrers/sha256:bad", 400, "DIGEST_INVALID")


async def test_storage_survives_a_restart(tmp_path: Path) -> None:
    root = tmp_path / "registry"
    data = b"resumable " * 1000
    async with aiohttp.ClientSession() as session:
        first = RegistryServer(root, [("127.0.0.1", 0)])
        await first.start()
        client = Client(first, session)
        digest, manifest = await client.push_image("keep/me", "1.0", layer=b"persistent layer")
        status, headers, _ = await client.request("POST", "/v2/keep/me/blobs/uploads/")
        location = headers["Location"]
        await client.request("PATCH", location, data=data[:4000], headers={"Content-Range": "0-3999"})
        await first.stop()

        second = RegistryServer(root, [("127.0.0.1", 0)])
        await second.start()
        try:
            client = Client(second, session)
            status, headers, body = await client.request("GET", "/v2/keep/me/manifests/1.0")
            assert (status, body, headers["Docker-Content-Digest"]) == (200, manifest, digest)
            assert (await client.request("GET", f"/v2/keep/me/blobs/{sha(b'persistent layer')}"))[2] == b"persistent layer"
            status, headers, _ = await client.request("GET", location)  # the upload resumes where it stopped
            assert (status, headers["Range"]) == (204, "0-3999")
            status, _, _ = await client.request("PUT", f"{location}?digest={sha(data)}", data=data[4000:],
                                                headers={"Content-Range": f"4000-{len(data) - 1}"})
            assert status == 201
            assert (await client.request("GET", f"/v2/keep/me/blobs/{sha(data)}"))[2] == data
            assert json.loads((await client.request("GET", "/v2/_catalog"))[2]) == {"repositories": ["keep/me"]}
        finally:
            await second.stop()


async def test_listen_address_in_use(client: Client, tmp_path: Path) -> None:
    second = RegistryServer(tmp_path / "second", [("127.0.0.1", 0), ("127.0.0.1", client.server.port)])
    with pytest.raises(OSError):
        await second.start()
    assert second.runner is None  # the first address it bound was released again
    status, _, _ = await client.request("GET", "/v2/")
    assert status == 200 and client.server.urls == [f"http://127.0.0.1:{client.server.port}"]
