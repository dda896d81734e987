"""kubelite.objects.protobuf against the bodies the real kubectl 1.37 sends.

The fixtures were captured by `fixtures/protobuf/capture.py`: for each `kubectl create ...` it saved the
protobuf body kubectl POSTed (`<case>.pb`) and kubectl's own JSON for the same command
(`--dry-run=client -o json`, `<case>.json`). decode(pb) must equal that JSON except for the
differences listed in EXPECTED_GAPS, each of which is a value Go's encoding/json writes but that
the decoder leaves out by design:

- `{}` for a non-pointer struct (`status`, `spec.strategy`, `containers[].resources`, an empty
  `template.metadata`, `status.loadBalancer`, Namespace `spec`): a JSON client's `{}` and an
  absent field default the same way, and the protobuf cannot tell "sent empty" from "zero";
- `null` for a nil slice without omitempty (ClusterRole `rules`).

Nothing else may differ. Hand-built messages below cover the types no kubectl command sends
(MicroTime, Duration, RawExtension, packed repeated fields) and malformed input.
"""

from __future__ import annotations

import contextlib
import copy
import json
import re
from pathlib import Path
from typing import Any

import pytest

from kubelite.objects import protobuf
from kubelite.objects.errors import BadRequest
from kubelite.objects.registry import REGISTRY
from kubelite.objects.schema import definitions

FIXTURES = Path(__file__).parent / "fixtures" / "protobuf"
CONTAINER = "spec.template.spec.containers.0"
EXPECTED_GAPS: dict[str, list[str]] = {
    "clusterrole": ["rules"],
    "configmap": [],
    "cronjob": ["spec.jobTemplate.spec.template.metadata",
                "spec.jobTemplate.spec.template.spec.containers.0.resources", "status"],
    "deployment": ["spec.strategy", f"{CONTAINER}.resources", "status"],
    "deployment-zero": ["spec.strategy", f"{CONTAINER}.resources", "status"],
    "ingress": ["status.loadBalancer", "status"],
    "job": ["spec.template.metadata", f"{CONTAINER}.resources", "status"],
    "job-from-cronjob": ["status"],
    "namespace": ["spec", "status"],
    "pdb-int": [],
    "pdb-percent": [],
    "priorityclass": [],
    "quota": ["status"],
    "role": [],
    "rolebinding": [],
    "secret": [],
    "secret-docker": [],
    "service-headless": ["status.loadBalancer", "status"],
    "service-nodeport": ["status.loadBalancer", "status"],
    "serviceaccount": [],
}


def without(obj: dict[str, Any], paths: list[str]) -> dict[str, Any]:
    """`obj` less the values at `paths` (dotted, list indexes as numbers), each of them {} or null."""
    obj = copy.deepcopy(obj)
    for path in paths:
        *parents, last = path.split(".")
        node: Any = obj
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node[part]
        assert node[last] in ({}, None), f"{path} is {node[last]!r}, not an empty struct or null"
        del node[last]
    return obj


@pytest.mark.parametrize("case", sorted(EXPECTED_GAPS))
def test_decode_equals_kubectl_json(case: str) -> None:
    want = json.loads((FIXTURES / f"{case}.json").read_text())
    got = protobuf.decode((FIXTURES / f"{case}.pb").read_bytes())
    assert got == without(want, EXPECTED_GAPS[case])


def test_every_fixture_is_checked() -> None:
    cases = {p.stem for p in FIXTURES.glob("*.pb")}
    assert cases == set(EXPECTED_GAPS) | {"token", "csr-approve"}


def test_pointer_zero_and_omitted_zeros() -> None:
    got = protobuf.decode((FIXTURES / "deployment-zero.pb").read_bytes())
    assert got["spec"]["replicas"] == 0  # *int32 sent as 0 stays
    assert "paused" not in got["spec"] and "minReadySeconds" not in got["spec"]  # omitempty zeros go
    job = protobuf.decode((FIXTURES / "job-from-cronjob.pb").read_bytes())
    pod = job["spec"]["template"]["spec"]
    assert pod["terminationGracePeriodSeconds"] == 0 and pod["securityContext"]["fsGroup"] == 0
    assert pod["volumes"][0] == {"name": "scratch", "emptyDir": {}}  # *EmptyDir{} stays, inlined
    assert pod["containers"][0]["ports"][1] == {"containerPort": 9090}  # hostPort: 0 dropped
    assert job["spec"]["suspend"] is False and job["spec"]["backoffLimit"] == 0


def test_rich_job_template_copied_from_cronjob() -> None:
    """kubectl GETs the CronJob (our JSON), copies its job template, and POSTs it as protobuf."""
    served = json.loads((FIXTURES / "served-nightly.json").read_text())
    template = protobuf.decode((FIXTURES / "job-from-cronjob.pb").read_bytes())["spec"]["template"]
    meta = template["metadata"]
    assert meta["creationTimestamp"] == "2024-01-02T03:04:05Z"
    assert meta["managedFields"][0]["time"] == "2024-01-02T03:04:05Z"
    assert meta["managedFields"][0]["fieldsV1"] == {"f:metadata": {"f:labels": {".": {}, "f:app": {}}}}
    container = template["spec"]["containers"][0]
    assert container["readinessProbe"]["httpGet"]["port"] == "http"  # IntOrString string
    assert container["livenessProbe"]["tcpSocket"]["port"] == 8080  # IntOrString int
    assert container["resources"]["requests"] == {"cpu": "100m", "memory": "1G", "ephemeral-storage": "0"}
    assert container["args"] == ["echo hi", ""]
    assert container["env"][0] == {"name": "EMPTY"}  # omitempty "" dropped, as kubectl's JSON does
    served_spec = served["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    assert template["spec"]["tolerations"] == served_spec["tolerations"]


def test_token_request() -> None:
    """`kubectl create token sa --duration=1h --audience=api --audience=vault` (no dry run exists).

    Go's JSON for the TokenRequest kubectl builds: empty metadata, spec, and a status whose `token`
    has no omitempty (so "") and whose zero `expirationTimestamp` is null (dropped).
    """
    assert protobuf.decode((FIXTURES / "token.pb").read_bytes()) == {
        "apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
        "spec": {"audiences": ["api", "vault"], "expirationSeconds": 3600},
        "status": {"token": ""},
    }


def test_csr_approval_round_trip() -> None:
    """`kubectl certificate approve csr1` GETs the CSR (our JSON) and PUTs it back with a condition."""
    served = json.loads((FIXTURES / "served-csr1.json").read_text())
    got = protobuf.decode((FIXTURES / "csr-approve.pb").read_bytes())
    *old, new = got["status"]["conditions"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", new.pop("lastUpdateTime"))
    assert new == {"type": "Approved", "status": "True", "reason": "KubectlApprove",
                   "message": "This CSR was approved by kubectl certificate approve."}
    got["status"]["conditions"] = old
    assert got == served  # bytes (spec.request), map of ExtraValue, Time, repeated strings


# --- the generated table against independent upstream facts ---

# Fields of kubernetes-validate's 1.37.0 OpenAPI that the k8s.io/api mirror (1.37 beta) lacks; the
# decoder skips their field numbers. Regenerate proto_schema.json from a newer mirror to drop these.
OPENAPI_ONLY = {
    ("k8s.io.api.core.v1.NodeSystemInfo", "runningInUserNamespace"),
    ("k8s.io.api.resource.v1.DeviceCounterConsumption", "compatibilityGroups"),
    ("k8s.io.api.resource.v1.DeviceSubRequest", "derivedAttributes"),
    ("k8s.io.api.resource.v1.ExactDeviceRequest", "derivedAttributes"),
}


def json_names(messages: dict[str, Any], name: str) -> set[str]:
    """The JSON properties of a message, with inlined (embedded) structs expanded."""
    out: set[str] = set()
    for js, typ, *_ in messages[name].values():
        out |= json_names(messages, typ) if js == "" else {js}
    return out


def test_schema_json_names_match_upstream_openapi() -> None:
    defs = definitions()
    messages = protobuf._schema()["messages"]
    special = {"Time", "MicroTime", "Duration", "FieldsV1", "Quantity", "QuantityValue", "IntOrString"}
    checked, unexpected = 0, set()
    for name in messages:
        definition = defs.get("io." + name.replace("k8s.io.", "k8s.", 1))
        if definition is None or name.rpartition(".")[2] in special:
            continue
        ours = json_names(messages, name) - {"apiVersion", "kind"}
        theirs = set(definition.get("properties", {})) - {"apiVersion", "kind"}
        assert ours <= theirs, f"{name}: {sorted(ours - theirs)} not in the OpenAPI definition"
        unexpected |= {(name, p) for p in theirs - ours}
        checked += 1
    assert checked > 500
    assert unexpected == OPENAPI_ONLY


def test_every_served_kind_has_a_message() -> None:
    for rt in REGISTRY.resources:
        assert protobuf.decode(body(rt.api_version, rt.kind, b"")) == {
            "apiVersion": rt.api_version, "kind": rt.kind}


# --- hand-built messages: the special types no kubectl command sends, and malformed input ---

def varint(n: int) -> bytes:
    n &= (1 << 64) - 1
    out = bytearray()
    while True:
        out.append((n & 0x7F) | (0x80 if n > 0x7F else 0))
        n >>= 7
        if not n:
            return bytes(out)


def vfield(num: int, n: int) -> bytes:
    return varint(num << 3) + varint(n)


def lfield(num: int, payload: bytes | str) -> bytes:
    data = payload.encode() if isinstance(payload, str) else payload
    return varint(num << 3 | 2) + varint(len(data)) + data


def body(api_version: str, kind: str, raw: bytes) -> bytes:
    return b"k8s\x00" + lfield(1, lfield(1, api_version) + lfield(2, kind)) + lfield(2, raw)


def lease(spec: bytes) -> dict[str, Any]:
    return protobuf.decode(body("coordination.k8s.io/v1", "Lease", lfield(2, spec)))


def test_time_and_micro_time() -> None:
    stamp = vfield(1, 1704164645) + vfield(2, 123456789)  # 2024-01-02T03:04:05.123456789Z
    spec = lease(lfield(3, stamp) + lfield(4, stamp))
    assert spec["spec"] == {"acquireTime": "2024-01-02T03:04:05.123456Z",
                            "renewTime": "2024-01-02T03:04:05.123456Z"}
    assert lease(lfield(3, vfield(1, 0) + vfield(2, 0)))["spec"] == {"acquireTime": "1970-01-01T00:00:00.000000Z"}
    assert lease(lfield(3, vfield(1, -1)))["spec"] == {"acquireTime": "1969-12-31T23:59:59.000000Z"}
    meta = lfield(1, "x") + lfield(8, stamp) + lfield(9, b"")  # creationTimestamp, deletionTimestamp
    cm = protobuf.decode(body("v1", "ConfigMap", lfield(1, meta)))
    assert cm["metadata"] == {"name": "x", "creationTimestamp": "2024-01-02T03:04:05Z"}  # zero time: gone


def test_time_out_of_range_is_bad_request() -> None:
    with pytest.raises(BadRequest):
        lease(lfield(3, vfield(1, 1 << 62)))


@pytest.mark.parametrize(("ns", "text"), [
    (0, "0s"), (1, "1ns"), (1500, "1.5µs"), (300_000_000, "300ms"), (1_500_000_000, "1.5s"),
    (60_000_000_000, "1m0s"), (3_600_000_000_000, "1h0m0s"), (3_723_004_000_000, "1h2m3.004s"),
    (-123_000_000_000, "-2m3s"),
])
def test_duration_like_go(ns: int, text: str) -> None:
    # No GA type has a metav1.Duration field, so the converter is called directly.
    assert protobuf._duration(vfield(1, ns)) == text


def test_int_or_string_and_quantity() -> None:
    pdb = lambda spec: protobuf.decode(body("policy/v1", "PodDisruptionBudget", lfield(2, spec)))  # noqa: E731
    assert pdb(lfield(1, vfield(1, 0) + vfield(2, -3) + lfield(3, "")))["spec"] == {"minAvailable": -3}
    assert pdb(lfield(1, vfield(1, 1) + vfield(2, 0) + lfield(3, "25%")))["spec"] == {"minAvailable": "25%"}
    assert pdb(lfield(1, b""))["spec"] == {"minAvailable": 0}
    with pytest.raises(BadRequest, match="IntOrString"):
        pdb(lfield(1, vfield(1, 7)))
    quota = lfield(1, lfield(1, "cpu") + lfield(2, lfield(1, "2"))) + lfield(1, lfield(1, "pods"))
    got = protobuf.decode(body("v1", "ResourceQuota", lfield(2, quota)))
    assert got["spec"] == {"hard": {"cpu": "2", "pods": "0"}}  # a missing map value is the zero Quantity


def test_raw_extension() -> None:
    revision = lambda data: protobuf.decode(body("apps/v1", "ControllerRevision", data))  # noqa: E731
    assert revision(lfield(2, lfield(1, b'{"spec":{"a":[1,null]}}')) + vfield(3, 2)) == {
        "apiVersion": "apps/v1", "kind": "ControllerRevision", "data": {"spec": {"a": [1, None]}},
        "revision": 2}
    inner = body("v1", "ConfigMap", lfield(1, lfield(1, "cm")))
    assert revision(lfield(2, lfield(1, inner)))["data"] == {
        "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cm"}}
    assert "data" not in revision(lfield(2, b""))  # nil Raw is JSON null
    with pytest.raises(BadRequest, match="JSON"):
        revision(lfield(2, lfield(1, b"{nope")))


def test_bytes_maps_and_packed_repeated() -> None:
    secret = lfield(2, lfield(1, "bin") + lfield(2, b"\x00\xff")) + lfield(2, lfield(1, "empty"))
    assert protobuf.decode(body("v1", "Secret", secret))["data"] == {"bin": "AP8=", "empty": ""}
    groups = [1, 2, 3, -1]  # PodSecurityContext.supplementalGroups, field 4 (int64)
    packed = lfield(4, b"".join(varint(g) for g in groups))
    unpacked = b"".join(vfield(4, g) for g in groups)
    mixed = lfield(4, varint(1) + varint(2)) + vfield(4, 3) + vfield(4, -1)
    for ctx in (packed, unpacked, mixed):
        pod = protobuf.decode(body("v1", "Pod", lfield(2, lfield(14, ctx))))
        assert pod["spec"] == {"securityContext": {"supplementalGroups": groups}}


def test_negative_int32_and_unknown_fields() -> None:
    deployment = lfield(2, vfield(1, -2) + vfield(99, 5) + lfield(98, "future"))
    got = protobuf.decode(body("apps/v1", "Deployment", deployment))
    assert got["spec"] == {"replicas": -2}  # 10-byte varint, read as int32; unknown 98/99 skipped


def test_list_types_and_meta_kinds() -> None:
    resource = lfield(1, "pods") + lfield(4, lfield(1, "get") + lfield(1, "list"))  # verbs: Verbs
    got = protobuf.decode(body("v1", "APIResourceList", lfield(1, "v1") + lfield(2, resource)))
    # Fields absent from the wire stay absent, even without omitempty (gogo always writes those).
    assert got["resources"] == [{"name": "pods", "verbs": ["get", "list"]}]
    opts = protobuf.decode(body("apps/v1", "DeleteOptions", vfield(1, 0) + lfield(4, "Foreground")))
    assert opts == {"apiVersion": "apps/v1", "kind": "DeleteOptions", "gracePeriodSeconds": 0,
                    "propagationPolicy": "Foreground"}


def test_invalid_utf8_is_replaced_like_go() -> None:
    got = protobuf.decode(body("v1", "Namespace", lfield(1, lfield(1, b"a\xffb"))))
    assert got["metadata"]["name"] == "a\ufffdb"


@pytest.mark.parametrize(("data", "message"), [
    (b"", "magic"),
    (b'{"kind":"Pod"}', "magic"),
    (b"k8s\x01" + lfield(2, b""), "magic"),
    (b"k8s\x00\x0a", "truncated"),  # typeMeta key, then no length
    (b"k8s\x00\x0a\x80", "truncated"),  # length varint never ends
    (b"k8s\x00\x0a\x05ab", "truncated"),  # length 5, two bytes
    (b"k8s\x00" + b"\x08" + b"\xff" * 11, "malformed varint"),
    (body("apps/v1", "Nope", b""), 'no kind "Nope"'),
    (body("nope/v1", "Deployment", b""), 'no kind "Deployment" is registered for version "nope/v1"'),
    (b"k8s\x00", 'no kind ""'),
    (body("v1", "Namespace", vfield(1, 5)), "length-delimited"),  # metadata sent as a varint
    (body("v1", "Namespace", lfield(1, lfield(1, "n") + lfield(7, "x"))), "varint"),  # generation
    (body("v1", "Namespace", b"\x0b"), "wire type 3"),  # group start
    (body("v1", "Namespace", b"\x00\x00"), "numbered 0"),
    (b"k8s\x00" + lfield(1, lfield(1, "v1") + lfield(2, "Namespace")) + lfield(3, "gzip"), "gzip"),
])
def test_malformed_bodies(data: bytes, message: str) -> None:
    with pytest.raises(BadRequest, match=re.escape(message)):
        protobuf.decode(data)


def test_deep_nesting_is_bad_request() -> None:
    data = body("v1", "ConfigMap", b"")
    for _ in range(2000):
        data = body("apps/v1", "ControllerRevision", lfield(2, lfield(1, data)))
    with pytest.raises(BadRequest, match="nested too deeply"):
        protobuf.decode(data)


def test_corrupted_fixtures_raise_only_bad_request() -> None:
    """Every truncation and single-byte corruption of real bodies: a dict, or BadRequest."""
    for path in sorted(FIXTURES.glob("*.pb")):
        data = path.read_bytes()
        variants = [data[:n] for n in range(len(data))]
        variants += [data[:i] + bytes([data[i] ^ x]) + data[i + 1:]
                     for i in range(4, len(data)) for x in (0x01, 0x80, 0xFF)]
        for variant in variants:
            with contextlib.suppress(BadRequest):
                assert isinstance(protobuf.decode(variant), dict)


@pytest.mark.parametrize(("content_type", "expected"), [
    ("application/vnd.kubernetes.protobuf", True),
    ("Application/VND.Kubernetes.Protobuf; charset=binary", True),
    ("application/vnd.kubernetes.protobuf;stream=watch", True),
    ("application/json", False),
    ("application/vnd.kubernetes.protobuf+json", False),
    ("", False),
])
def test_is_protobuf(content_type: str, expected: bool) -> None:
    assert protobuf.is_protobuf(content_type) is expected
