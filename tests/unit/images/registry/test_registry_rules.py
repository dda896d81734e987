"""The distribution spec's rules: names, tags, digests, Content-Range, pagination, URL layout."""

from __future__ import annotations

import pytest

from kubelite.images.registry.rules import (
    CATALOGUE,
    RegistryError,
    check_chunk,
    check_name,
    is_tag,
    paginate,
    parse_content_range,
    parse_digest,
    parse_listen,
    parse_page,
    range_header,
    route,
)

HEX = "a" * 64


@pytest.mark.parametrize("name", [
    "a", "library/hello-world", "x/y/z", "foo__bar", "foo.bar", "foo---bar", "a0/b1-c2.d3_e4",
    "/".join(["abc"] * 60),  # 239 characters
])
def test_valid_names(name: str) -> None:
    assert check_name(name) == name


@pytest.mark.parametrize("name", [
    "", "A", "Library/x", "-a", "a-", "a_", "_a", "a___b", "a..b", "a//b", "a/", "/a", "a/_tags",
    "a/b/", "a:b", "a" * 256,
])
def test_invalid_names(name: str) -> None:
    with pytest.raises(RegistryError) as info:
        check_name(name)
    assert info.value.code == "NAME_INVALID" and info.value.status == 400


def test_tags() -> None:
    assert is_tag("latest") and is_tag("1.0") and is_tag("_x") and is_tag("A" * 128)
    assert not is_tag(".hidden") and not is_tag("-x") and not is_tag("A" * 129) and not is_tag("a/b")
    assert not is_tag("") and not is_tag("sha256:" + HEX)


def test_digests() -> None:
    digest = parse_digest("sha256:" + HEX)
    assert (digest.algorithm, digest.hex, str(digest)) == ("sha256", HEX, "sha256:" + HEX)
    assert parse_digest("sha512:" + "0" * 128).algorithm == "sha512"
    for bad in ["sha256:" + HEX[:-1], "sha256:" + HEX.upper(), "sha256:" + HEX + "0", "sha256", HEX,
                "md5:" + "0" * 32, "SHA256:" + HEX, "sha256:" + "g" * 64, ""]:
        with pytest.raises(RegistryError) as info:
            parse_digest(bad)
        assert info.value.code == "DIGEST_INVALID" and info.value.status == 400, bad


def test_content_range() -> None:
    assert parse_content_range("0-99") == (0, 99)
    assert parse_content_range("bytes 100-199/*") == (100, 199)
    assert parse_content_range("bytes=5-5") == (5, 5)
    with pytest.raises(RegistryError) as info:
        parse_content_range("abc")
    assert (info.value.code, info.value.status) == ("BLOB_UPLOAD_INVALID", 400)
    with pytest.raises(RegistryError) as info:
        parse_content_range("10-5")
    assert info.value.status == 416


def test_chunks_must_continue_the_upload() -> None:
    check_chunk(100, 199, offset=100, length=100)
    check_chunk(0, 9, offset=0, length=None)  # chunked transfer: the length is checked after reading
    with pytest.raises(RegistryError) as info:
        check_chunk(200, 299, offset=100, length=100)
    assert (info.value.code, info.value.status) == ("BLOB_UPLOAD_INVALID", 416)
    with pytest.raises(RegistryError) as info:
        check_chunk(0, 99, offset=50, length=100)  # a chunk sent twice is out of order too
    assert info.value.status == 416
    with pytest.raises(RegistryError) as info:
        check_chunk(100, 199, offset=100, length=50)
    assert (info.value.code, info.value.status) == ("SIZE_INVALID", 400)


def test_range_header() -> None:
    assert range_header(0) == "0-0" and range_header(1) == "0-0" and range_header(100) == "0-99"


def test_paginate() -> None:
    items = ["a", "b", "c", "d", "e"]
    assert paginate(items, None, "") == (items, None)
    assert paginate(items, 2, "") == (["a", "b"], "b")
    assert paginate(items, 2, "b") == (["c", "d"], "d")
    assert paginate(items, 2, "d") == (["e"], None)
    assert paginate(items, 5, "") == (items, None)
    assert paginate(items, 0, "") == ([], None)
    assert paginate(items, None, "bb") == (["c", "d", "e"], None)  # `last` need not exist
    assert paginate(items, 3, "e") == ([], None)


def test_parse_page() -> None:
    assert parse_page({}) == (None, "")
    assert parse_page({"n": "10", "last": "x"}) == (10, "x")
    for bad in ["-1", "abc", "1.5"]:
        with pytest.raises(RegistryError) as info:
            parse_page({"n": bad})
        assert info.value.code == "PAGINATION_NUMBER_INVALID" and info.value.status == 400


@pytest.mark.parametrize(("path", "want"), [
    ("/v2/", ("base", "", "")),
    ("/v2", ("base", "", "")),
    ("/v2/_catalog", ("catalog", "", "")),
    ("/v2/library/hello-world/tags/list", ("tags", "library/hello-world", "")),
    ("/v2/a/b/manifests/1.0", ("manifest", "a/b", "1.0")),
    ("/v2/a/manifests/sha256:" + HEX, ("manifest", "a", "sha256:" + HEX)),
    ("/v2/a/b/blobs/uploads/", ("uploads", "a/b", "")),
    ("/v2/a/b/blobs/uploads", ("uploads", "a/b", "")),
    ("/v2/a/b/blobs/uploads/0f0e", ("upload", "a/b", "0f0e")),
    ("/v2/a/b/blobs/sha256:" + HEX, ("blob", "a/b", "sha256:" + HEX)),
    ("/v2/x/blobs/blobs/sha256:" + HEX, ("blob", "x/blobs", "sha256:" + HEX)),  # a component named blobs
    ("/v2/x/manifests/manifests/t", ("manifest", "x/manifests", "t")),
    ("/v2/a/referrers/sha256:" + HEX, ("referrers", "a", "sha256:" + HEX)),
])
def test_route(path: str, want: tuple[str, str, str]) -> None:
    found = route(path)
    assert found is not None and (found.kind, found.name, found.arg) == want


def test_route_rejects() -> None:
    assert route("/v1/x") is None and route("/v2/a/b") is None and route("/other") is None
    with pytest.raises(RegistryError) as info:
        route("/v2/Upper/tags/list")
    assert info.value.code == "NAME_INVALID"


def test_error_body_and_catalogue() -> None:
    error = RegistryError("MANIFEST_BLOB_UNKNOWN", {"digest": "d1"}, also=[{"digest": "d2"}])
    assert error.status == 400
    assert [e["detail"] for e in error.body()["errors"]] == [{"digest": "d1"}, {"digest": "d2"}]
    assert all(e["code"] == "MANIFEST_BLOB_UNKNOWN" and e["message"] for e in error.body()["errors"])
    assert RegistryError("BLOB_UNKNOWN").body() == {"errors": [{"code": "BLOB_UNKNOWN", "message": "blob unknown to registry"}]}
    statuses = {code: status for code, (status, _) in CATALOGUE.items()}
    assert statuses["BLOB_UNKNOWN"] == statuses["MANIFEST_UNKNOWN"] == statuses["NAME_UNKNOWN"] == 404
    assert statuses["BLOB_UPLOAD_UNKNOWN"] == 404 and statuses["UNSUPPORTED"] == 405
    assert statuses["DIGEST_INVALID"] == statuses["NAME_INVALID"] == statuses["SIZE_INVALID"] == 400


def test_parse_listen() -> None:
    assert parse_listen("127.0.0.1:5000, [::1]:5001,198.19.128.1:0") == [
        ("127.0.0.1", 5000), ("::1", 5001), ("198.19.128.1", 0)]
    assert parse_listen("") == []
    for bad in ["127.0.0.1", "127.0.0.1:x", ":5000", "h:70000"]:
        with pytest.raises(ValueError, match="host:port"):
            parse_listen(bad)
