"""resourceVersion semantics, bookmarks, streaming lists, single-object watches and metadata views."""

from __future__ import annotations

import http.client
import json
import ssl

import pytest

from kubelite.api import watchstream
from tests.integration.conftest import ServerThread
from tests.integration.test_bad_input import Raw, assert_status


@pytest.fixture
def raw(server: ServerThread) -> Raw:
    return Raw(server)


def events(body: object) -> list[dict]:
    text = body if isinstance(body, str) else json.dumps(body)
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def make_cm(raw: Raw, ns: str, name: str, labels: dict | None = None) -> dict:
    status, _, obj = raw("POST", f"/api/v1/namespaces/{ns}/configmaps",
                         json.dumps({"metadata": {"name": name, "labels": labels or {}}}))
    assert status == 201
    return obj


def test_resource_version_match_semantics(raw: Raw, ns: str) -> None:
    base = f"/api/v1/namespaces/{ns}/configmaps"
    first = make_cm(raw, ns, "one")
    rv1 = first["metadata"]["resourceVersion"]
    make_cm(raw, ns, "two")
    exact = raw("GET", f"{base}?resourceVersion={rv1}&resourceVersionMatch=Exact")[2]
    assert [i["metadata"]["name"] for i in exact["items"]] == ["one"] and exact["metadata"]["resourceVersion"] == rv1
    not_older = raw("GET", f"{base}?resourceVersion={rv1}&resourceVersionMatch=NotOlderThan")[2]
    assert [i["metadata"]["name"] for i in not_older["items"]] == ["one", "two"]
    any_rv = raw("GET", f"{base}?resourceVersion=0")[2]
    assert len(any_rv["items"]) == 2
    future = int(not_older["metadata"]["resourceVersion"]) + 1000
    body = assert_status(raw("GET", f"{base}?resourceVersion={future}&resourceVersionMatch=NotOlderThan"),
                         504, "Timeout", "Too large resource version")
    assert body["details"]["causes"][0]["reason"] == "ResourceVersionTooLarge"
    assert_status(raw("GET", f"{base}?resourceVersionMatch=Exact"), 400, "BadRequest", "resourceVersionMatch")


def test_watch_initial_events_and_bookmarks(raw: Raw, ns: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(watchstream, "BOOKMARK_INTERVAL", 0.3)
    make_cm(raw, ns, "a")
    make_cm(raw, ns, "b")
    got = events(raw("GET", f"/api/v1/namespaces/{ns}/configmaps?watch=true&sendInitialEvents=true"
                            "&allowWatchBookmarks=true&resourceVersionMatch=NotOlderThan&timeoutSeconds=1")[2])
    assert [(e["type"], e["object"]["metadata"].get("name")) for e in got[:3]] == [
        ("ADDED", "a"), ("ADDED", "b"), ("BOOKMARK", None)]
    end = got[2]["object"]
    assert end["metadata"]["annotations"] == {"k8s.io/initial-events-end": "true"}
    assert end["kind"] == "ConfigMap" and int(end["metadata"]["resourceVersion"]) > 0
    periodic = [e for e in got[3:] if e["type"] == "BOOKMARK"]
    assert periodic and all(e["object"]["metadata"]["resourceVersion"] == end["metadata"]["resourceVersion"]
                            for e in periodic)


def test_watch_without_rv_starts_with_current_state(raw: Raw, ns: str) -> None:
    make_cm(raw, ns, "present")
    got = events(raw("GET", f"/api/v1/namespaces/{ns}/configmaps?watch=true&timeoutSeconds=1")[2])
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in got] == [("ADDED", "present")]


def test_watch_single_object_and_selector_transitions(raw: Raw, ns: str) -> None:
    base = f"/api/v1/namespaces/{ns}/configmaps"
    target = make_cm(raw, ns, "target", {"tier": "fe"})
    make_cm(raw, ns, "other", {"tier": "fe"})
    rv = target["metadata"]["resourceVersion"]
    raw("PATCH", f"{base}/other", '{"data":{"x":"1"}}', "application/merge-patch+json")
    raw("PATCH", f"{base}/target", '{"metadata":{"labels":{"tier":"be"}}}', "application/merge-patch+json")
    raw("PATCH", f"{base}/target", '{"metadata":{"labels":{"tier":"fe"}}}', "application/merge-patch+json")
    single = events(raw("GET", f"{base}/target?watch=true&resourceVersion={rv}&timeoutSeconds=1")[2])
    assert [e["object"]["metadata"]["name"] for e in single] == ["target", "target"]
    # with a label selector, leaving the selection is DELETED and coming back is ADDED, as upstream
    selected = events(raw("GET", f"{base}?watch=true&labelSelector=tier%3Dfe&resourceVersion={rv}"
                                 "&timeoutSeconds=1")[2])
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in selected] == [
        ("ADDED", "other"), ("MODIFIED", "other"), ("DELETED", "target"), ("ADDED", "target")]


def test_partial_object_metadata_and_table_views(server: ServerThread, ns: str) -> None:
    make_cm(Raw(server), ns, "viewed", {"k": "v"})
    accept_meta = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1"
    pki = server.config.data_dir / "pki"
    context = ssl.create_default_context(cafile=str(pki / "ca.crt"))
    context.load_cert_chain(str(pki / "admin.crt"), str(pki / "admin.key"))
    conn = http.client.HTTPSConnection("127.0.0.1", server.config.port, context=context, timeout=10)
    conn.request("GET", f"/api/v1/namespaces/{ns}/configmaps", headers={"Accept": accept_meta})
    listed = json.loads(conn.getresponse().read())
    assert listed["kind"] == "PartialObjectMetadataList" and listed["apiVersion"] == "meta.k8s.io/v1"
    assert listed["items"][0]["metadata"]["labels"] == {"k": "v"} and "data" not in listed["items"][0]
    conn.request("GET", f"/api/v1/namespaces/{ns}/configmaps/viewed",
                 headers={"Accept": "application/json;as=Table;v=v1;g=meta.k8s.io"})
    table = json.loads(conn.getresponse().read())
    assert table["kind"] == "Table" and table["rows"][0]["cells"][0] == "viewed"
    assert table["rows"][0]["object"]["kind"] == "PartialObjectMetadata"
    conn.close()
