"""Bad input gets a clear metav1 Status naming the problem, never a 500, and changes nothing."""

from __future__ import annotations

import http.client
import json
import ssl
from typing import Any

import pytest

from tests.integration.conftest import ServerThread

DEPLOYMENT = {
    "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "good"},
    "spec": {"selector": {"matchLabels": {"app": "good"}},
             "template": {"metadata": {"labels": {"app": "good"}},
                          "spec": {"containers": [{"name": "c", "image": "nginx"}]}}},
}


class Raw:
    """Plain HTTPS requests with the admin client certificate: bytes in, (status, headers, body) out."""

    def __init__(self, server: ServerThread) -> None:
        pki = server.config.data_dir / "pki"
        self.context = ssl.create_default_context(cafile=str(pki / "ca.crt"))
        self.context.load_cert_chain(str(pki / "admin.crt"), str(pki / "admin.key"))
        self.port = server.config.port

    def __call__(self, method: str, path: str, body: bytes | str | None = None,
                 content_type: str = "application/json") -> tuple[int, Any, Any]:
        conn = http.client.HTTPSConnection("127.0.0.1", self.port, context=self.context, timeout=30)
        data = body.encode() if isinstance(body, str) else body
        conn.request(method, path, body=data, headers={"Content-Type": content_type} if data is not None else {})
        response = conn.getresponse()
        raw = response.read()
        conn.close()
        try:
            parsed = json.loads(raw)
        except ValueError:
            parsed = raw.decode(errors="replace")
        return response.status, response.headers, parsed


@pytest.fixture
def raw(server: ServerThread) -> Raw:
    return Raw(server)


def assert_status(result: tuple[int, Any, Any], code: int, reason: str, *fragments: str) -> dict:
    status, headers, body = result
    assert status == code, body
    assert isinstance(body, dict) and body["kind"] == "Status" and body["reason"] == reason, body
    assert body["code"] == code and body["status"] == "Failure"
    for fragment in fragments:
        assert fragment in json.dumps(body), (fragment, body)
    return body


def deployments(ns: str) -> str:
    return f"/apis/apps/v1/namespaces/{ns}/deployments"


def rv_of(raw: Raw, path: str) -> str:
    return raw("GET", path)[2]["metadata"]["resourceVersion"]


def test_malformed_bodies(raw: Raw, ns: str) -> None:
    assert_status(raw("POST", deployments(ns), "{not json"), 400, "BadRequest", "invalid JSON")
    assert_status(raw("POST", deployments(ns), "a: [b", "application/yaml"), 400, "BadRequest", "invalid YAML")
    assert_status(raw("POST", deployments(ns), "[1, 2]"), 400, "BadRequest", "must be a JSON or YAML object")
    assert_status(raw("POST", deployments(ns), b"k8s\x00\x0a\xff"), 400, "BadRequest")
    assert_status(raw("POST", deployments(ns), b"\x00garbage", "application/vnd.kubernetes.protobuf"),
                  400, "BadRequest")
    assert_status(raw("POST", deployments(ns), "x", "application/xml"), 415, "UnsupportedMediaType",
                  "application/xml")
    assert raw("GET", deployments(ns))[2]["items"] == []


def test_wrong_kind_version_and_types(raw: Raw, ns: str) -> None:
    wrong_kind = {**DEPLOYMENT, "kind": "Pod"}
    assert_status(raw("POST", deployments(ns), json.dumps(wrong_kind)), 400, "BadRequest", "kind")
    wrong_version = {**DEPLOYMENT, "apiVersion": "v1"}
    assert_status(raw("POST", deployments(ns), json.dumps(wrong_version)), 400, "BadRequest", "API version")
    wrong_type = json.loads(json.dumps(DEPLOYMENT))
    wrong_type["spec"]["replicas"] = "three"
    assert_status(raw("POST", deployments(ns), json.dumps(wrong_type)), 400, "BadRequest", "spec.replicas")
    assert raw("GET", deployments(ns))[2]["items"] == []


def test_unknown_fields_strict_warn_ignore(raw: Raw, ns: str) -> None:
    body = json.loads(json.dumps(DEPLOYMENT))
    body["spec"]["bogus"] = 1
    assert_status(raw("POST", deployments(ns) + "?fieldValidation=Strict", json.dumps(body)), 400,
                  "BadRequest", 'unknown field \\"spec.bogus\\"')
    status, headers, created = raw("POST", deployments(ns) + "?fieldValidation=Warn", json.dumps(body))
    assert status == 201 and "spec.bogus" in headers.get("Warning", "")
    assert "bogus" not in created["spec"]
    assert_status(raw("POST", deployments(ns) + "?fieldValidation=Sometimes", json.dumps(body)), 400,
                  "BadRequest", "fieldValidation")


def test_invalid_objects_name_the_field(raw: Raw, ns: str) -> None:
    bad = json.loads(json.dumps(DEPLOYMENT))
    bad["metadata"]["name"] = "Not_Valid"
    body = assert_status(raw("POST", deployments(ns), json.dumps(bad)), 422, "Invalid")
    assert body["details"]["causes"][0]["field"] == "metadata.name"
    mismatch = json.loads(json.dumps(DEPLOYMENT))
    mismatch["spec"]["template"]["metadata"]["labels"] = {"app": "other"}
    body = assert_status(raw("POST", deployments(ns), json.dumps(mismatch)), 422, "Invalid")
    assert any(c["field"] == "spec.template.metadata.labels" for c in body["details"]["causes"])
    negative = json.loads(json.dumps(DEPLOYMENT))
    negative["spec"]["replicas"] = -1
    body = assert_status(raw("POST", deployments(ns), json.dumps(negative)), 422, "Invalid")
    assert body["details"]["causes"][0]["field"] == "spec.replicas"
    assert raw("GET", deployments(ns))[2]["items"] == []


def test_immutable_selector_and_stale_update(raw: Raw, ns: str) -> None:
    status, _, created = raw("POST", deployments(ns), json.dumps(DEPLOYMENT))
    assert status == 201
    path = deployments(ns) + "/good"
    changed = json.loads(json.dumps(created))
    changed["spec"]["selector"] = {"matchLabels": {"app": "good", "x": "y"}}
    changed["spec"]["template"]["metadata"]["labels"]["x"] = "y"
    body = assert_status(raw("PUT", path, json.dumps(changed)), 422, "Invalid", "field is immutable")
    assert body["details"]["causes"][0]["field"] == "spec.selector"
    stale = json.loads(json.dumps(created))
    raw("PATCH", path, '{"metadata":{"labels":{"bump":"1"}}}', "application/merge-patch+json")
    stale["spec"]["replicas"] = 4
    assert_status(raw("PUT", path, json.dumps(stale)), 409, "Conflict", "has been modified")
    assert raw("GET", path)[2]["spec"]["replicas"] == 1
    other_name = json.loads(json.dumps(created))
    other_name["metadata"]["name"] = "else"
    assert_status(raw("PUT", path, json.dumps(other_name)), 400, "BadRequest", "does not match")


def test_bad_patches(raw: Raw, ns: str) -> None:
    raw("POST", deployments(ns), json.dumps(DEPLOYMENT))
    path = deployments(ns) + "/good"
    before = rv_of(raw, path)
    assert_status(raw("PATCH", path, "{oops", "application/merge-patch+json"), 400, "BadRequest")
    assert_status(raw("PATCH", path, '[{"op":"replace","path":"/spec/nothing/here","value":1}]',
                      "application/json-patch+json"), 422, "Invalid")
    assert_status(raw("PATCH", path, '{"spec":{"replicas":"x"}}', "application/merge-patch+json"), 400,
                  "BadRequest", "spec.replicas")
    assert_status(raw("PATCH", path, '{"spec":{"replicas":1}}', "text/csv"), 415, "UnsupportedMediaType")
    assert_status(raw("PATCH", path, '{"spec":{"selector":{"matchLabels":{"b":"c"}}}}',
                      "application/strategic-merge-patch+json"), 422, "Invalid")
    assert rv_of(raw, path) == before


def test_bad_queries(raw: Raw, ns: str) -> None:
    pods = f"/api/v1/namespaces/{ns}/pods"
    assert_status(raw("GET", pods + "?labelSelector=a%20in%20(b"), 400, "BadRequest")
    assert_status(raw("GET", pods + "?fieldSelector=spec.nope%3D1"), 400, "BadRequest",
                  "field label not supported")
    assert_status(raw("GET", pods + "?resourceVersion=abc"), 400, "BadRequest", "resourceVersion")
    assert_status(raw("GET", pods + "?continue=%%%"), 400, "BadRequest", "continue")
    assert_status(raw("GET", pods + "?limit=-1"), 400, "BadRequest", "limit")
    assert_status(raw("DELETE", pods + "/x", '{"propagationPolicy":"Sideways"}'), 400, "BadRequest",
                  "propagationPolicy")


def test_routing_errors(raw: Raw, ns: str) -> None:
    assert_status(raw("GET", f"/api/v1/namespaces/{ns}/widgets"), 404, "NotFound")
    assert_status(raw("GET", f"/apis/apps/v1/namespaces/{ns}/deployments/missing"), 404, "NotFound",
                  'deployments.apps \\"missing\\" not found')
    assert_status(raw("PUT", deployments(ns), "{}"), 405, "MethodNotAllowed")
    assert_status(raw("GET", f"/api/v1/namespaces/{ns}/pods/x/log"), 404, "NotFound", 'pods \\"x\\" not found')
    assert_status(raw("GET", f"/api/v1/namespaces/{ns}/pods/x/proxy"), 501, "NotImplemented", "not served")


def test_body_too_large(raw: Raw, ns: str) -> None:
    big = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "big"}, "data": {"a": "x" * (4 << 20)}}
    status, _, body = raw("POST", f"/api/v1/namespaces/{ns}/configmaps", json.dumps(big))
    assert status == 413, body
    assert raw("GET", f"/api/v1/namespaces/{ns}/configmaps/big")[0] == 404


def test_anonymous_requests_are_refused(server: ServerThread) -> None:
    context = ssl.create_default_context(cafile=str(server.config.data_dir / "pki" / "ca.crt"))
    conn = http.client.HTTPSConnection("127.0.0.1", server.config.port, context=context, timeout=10)
    conn.request("GET", "/api/v1/namespaces")
    response = conn.getresponse()
    body = json.loads(response.read())
    assert response.status == 401 and body["reason"] == "Unauthorized"
    conn.request("GET", "/version")
    response = conn.getresponse()
    assert response.status == 200 and json.loads(response.read())["major"] == "1"
    conn.close()


def test_watch_from_compacted_revision_is_gone(server: ServerThread, raw: Raw, ns: str) -> None:
    raw("POST", f"/api/v1/namespaces/{ns}/configmaps", json.dumps({"metadata": {"name": "old"}}))
    old_rv = rv_of(raw, f"/api/v1/namespaces/{ns}/configmaps/old")
    raw("PATCH", f"/api/v1/namespaces/{ns}/configmaps/old", '{"data":{"a":"b"}}', "application/merge-patch+json")
    store = server.runtime.store
    server.call(store.compact(server.call(store.current_revision())))
    status, _, body = raw("GET", f"/api/v1/namespaces/{ns}/configmaps?watch=true&resourceVersion={int(old_rv) - 1}"
                          "&timeoutSeconds=2")
    assert status == 200
    event = json.loads(body.splitlines()[0]) if isinstance(body, str) else body
    assert event["type"] == "ERROR" and event["object"]["code"] == 410
    listed = raw("GET", f"/api/v1/namespaces/{ns}/configmaps?resourceVersion={int(old_rv) - 1}"
                        "&resourceVersionMatch=Exact")
    assert_status(listed, 410, "Expired")
