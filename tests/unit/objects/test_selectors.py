"""Label and field selectors, checked against upstream apimachinery's behaviour and messages."""

from __future__ import annotations

from typing import Any

import pytest

from kubelite.objects.errors import BadRequest
from kubelite.objects.selectors import (
    FieldSelector,
    LabelSelector,
    format_label_selector,
    object_fields,
    parse_field_selector,
    parse_label_selector,
    selector_from_dict,
    selector_to_string,
    validate_field_selector,
)

# --- label selectors: parsing and canonical text ---------------------------------------------


@pytest.mark.parametrize(("text", "canonical"), [
    ("", ""),
    ("   ", ""),
    ("app=hello", "app=hello"),
    ("app==hello", "app==hello"),
    ("tier!=db,app=hello", "app=hello,tier!=db"),
    (" app = hello , tier != db ", "app=hello,tier!=db"),
    ("env in (prod, qa)", "env in (prod,qa)"),
    ("env in (qa,prod,qa)", "env in (prod,qa)"),
    ("env notin (prod)", "env notin (prod)"),
    ("x in (foo,,baz),y,z notin ()", "x in (,baz,foo),y,z notin ()"),
    ("!canary", "!canary"),
    ("partition", "partition"),
    ("a=", "a="),
    ("example.com/app=web", "example.com/app=web"),
    ("in in (in,notin)", "in in (in,notin)"),
    ("replicas>1,replicas<5", "replicas>1,replicas<5"),
])
def test_parse_label_selector_canonical_text(text: str, canonical: str) -> None:
    selector = parse_label_selector(text)
    assert str(selector) == canonical
    assert selector.to_string() == canonical
    assert selector.empty == (canonical == "")


@pytest.mark.parametrize(("text", "message"), [
    ("a b", "unable to parse requirement: found 'b', expected: in, notin, =, ==, !=, gt, lt"),
    ("a=b c", "found 'c', expected: ',' or 'end of string'"),
    ("a=b,", "found '', expected: identifier after ','"),
    (",a", "found ',', expected: !, identifier, or 'end of string'"),
    ("a in b", "unable to parse requirement: found 'b' expected: '('"),
    ("a in (b c)", "unable to parse requirement: found 'c', expected: ',' or ')'"),
    ("a in (b", "unable to parse requirement: found '', expected: ',' or ')'"),
    ("a=(", "unable to parse requirement: found '(', expected: identifier"),
    ("!!a", "unable to parse requirement: found '!', expected: identifier"),
    ("!a=b", "found '=', expected: ',' or 'end of string'"),
    ("a/b/c=d", 'unable to parse requirement: <nil>: Invalid value: "a/b/c": a valid label key must consist'),
    ("-a=b", 'unable to parse requirement: <nil>: Invalid value: "-a": name part must consist of'),
    ("/a=b", 'unable to parse requirement: <nil>: Invalid value: "/a": prefix part must be non-empty'),
    ("Example.com/a=b", "prefix part a lowercase RFC 1123 subdomain"),
    ("a=" + "v" * 64, f'unable to parse requirement: values[0][a]: Invalid value: "{"v" * 64}": must be no more '
                      "than 63 bytes"),
    ("a=b@c", 'values[0][a]: Invalid value: "b@c": a valid label must be an empty string'),
    ("a>b", "values[0]: Invalid value: \"b\": for 'Gt', 'Lt' operators, the value must be an integer"),
])
def test_parse_label_selector_errors(text: str, message: str) -> None:
    with pytest.raises(BadRequest) as err:
        parse_label_selector(text)
    assert message in err.value.message


def test_label_key_name_part_is_limited_to_63_bytes() -> None:
    assert str(parse_label_selector("k" * 63)) == "k" * 63
    with pytest.raises(BadRequest, match="name part must be no more than 63 bytes"):
        parse_label_selector("k" * 64)


# --- label selectors: matching ---------------------------------------------------------------

LABELS = {"app": "hello", "tier": "web", "replicas": "3"}


@pytest.mark.parametrize(("text", "expected"), [
    ("", True),
    ("app=hello", True),
    ("app==hello,tier=web", True),
    ("app=other", False),
    ("app!=other", True),
    ("missing!=x", True),  # != and notin match objects without the label
    ("missing notin (x)", True),
    ("missing in (x)", False),
    ("tier in (db,web)", True),
    ("tier notin (db,web)", False),
    ("app", True),
    ("missing", False),
    ("!missing", True),
    ("!app", False),
    ("replicas>2", True),
    ("replicas<3", False),
    ("app>2", False),  # a non-integer label never satisfies gt/lt
    ("missing=", False),  # an empty value is still a value: the key must exist
])
def test_label_selector_matches(text: str, expected: bool) -> None:
    assert parse_label_selector(text).matches(LABELS) is expected


def test_label_selector_requires_exact_match() -> None:
    selector = parse_label_selector("app=hello,tier in (web),env in (a,b)")
    assert selector.requires_exact_match("app") == "hello"
    assert selector.requires_exact_match("tier") == "web"
    assert selector.requires_exact_match("env") is None
    assert selector.requires_exact_match("other") is None


# --- metav1.LabelSelector --------------------------------------------------------------------


def test_selector_from_dict_none_matches_nothing_and_empty_everything() -> None:
    nothing, everything = selector_from_dict(None), selector_from_dict({})
    assert not nothing.matches({}) and not nothing.matches(LABELS)
    assert not nothing.empty and str(nothing) == ""
    assert everything.matches({}) and everything.matches(LABELS) and everything.empty
    assert isinstance(everything, LabelSelector)


def test_selector_from_dict_match_labels_and_expressions() -> None:
    selector = selector_from_dict({
        "matchLabels": {"tier": "web", "app": "hello"},
        "matchExpressions": [{"key": "env", "operator": "In", "values": ["qa", "prod"]},
                             {"key": "canary", "operator": "DoesNotExist"},
                             {"key": "app", "operator": "Exists"},
                             {"key": "zone", "operator": "NotIn", "values": ["b"]}],
    })
    assert str(selector) == "app=hello,app,!canary,env in (prod,qa),tier=web,zone notin (b)"
    assert selector.matches({"app": "hello", "tier": "web", "env": "qa"})
    assert not selector.matches({"app": "hello", "tier": "web", "env": "qa", "canary": "1"})


@pytest.mark.parametrize(("selector", "message"), [
    ({"matchExpressions": [{"key": "a", "operator": "Equals", "values": ["x"]}]},
     '"Equals" is not a valid label selector operator'),
    ({"matchExpressions": [{"key": "a", "operator": "In", "values": []}]},
     "values: Invalid value: \\[\\]: for 'in', 'notin' operators, values set can't be empty"),
    ({"matchExpressions": [{"key": "a", "operator": "Exists", "values": ["x"]}]},
     'values: Invalid value: \\["x"\\]: values set must be empty for exists and does not exist'),
    ({"matchLabels": {"bad key": "x"}}, 'key: Invalid value: "bad key": name part must consist of'),
    ({"matchLabels": {"a": "bad value"}}, 'values\\[0\\]\\[a\\]: Invalid value: "bad value"'),
])
def test_selector_from_dict_errors(selector: dict[str, Any], message: str) -> None:
    with pytest.raises(BadRequest, match=message):
        selector_from_dict(selector)


def test_selector_to_string_and_table_format() -> None:
    selector = {"matchLabels": {"pod-template-hash": "abc", "app": "hello"}}
    assert selector_to_string(selector) == "app=hello,pod-template-hash=abc"
    assert selector_to_string({}) == "" and selector_to_string(None) == ""
    assert format_label_selector(selector) == "app=hello,pod-template-hash=abc"
    assert format_label_selector({}) == "<none>"
    assert format_label_selector({"matchExpressions": [{"key": "a", "operator": "Bogus"}]}) == "<error>"


# --- field selectors -------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "requirements", "canonical"), [
    ("", [], ""),
    ("metadata.name=x", [("metadata.name", "=", "x")], "metadata.name=x"),
    ("metadata.name==x", [("metadata.name", "=", "x")], "metadata.name=x"),
    ("status.phase!=Running,spec.nodeName=n1",
     [("spec.nodeName", "=", "n1"), ("status.phase", "!=", "Running")], "spec.nodeName=n1,status.phase!=Running"),
    ("spec.nodeName=", [("spec.nodeName", "=", "")], "spec.nodeName="),
    ("a=b\\,c\\=d\\\\", [("a", "=", "b,c=d\\")], "a=b\\,c\\=d\\\\"),
    ("=", [], ""),
    ("a=b,,c=d", [("a", "=", "b"), ("c", "=", "d")], "a=b,c=d"),
])
def test_parse_field_selector(text: str, requirements: list[tuple[str, str, str]], canonical: str) -> None:
    selector = parse_field_selector(text)
    assert [(r.field, r.operator, r.value) for r in selector.requirements] == requirements
    assert str(selector) == canonical
    assert selector.empty == (not requirements)


@pytest.mark.parametrize(("text", "message"), [
    ("abc", "invalid selector: 'abc'; can't understand 'abc'"),
    ("a=b,c", "invalid selector: 'a=b,c'; can't understand 'c'"),
    ("a=b=c", "invalid field selector: unescaped character in value: 61"),
    ("a=b\\x", "invalid field selector: invalid escape sequence: \\\\x"),
    ("a=b\\", "invalid field selector: invalid escape sequence: \\\\$"),
])
def test_parse_field_selector_errors(text: str, message: str) -> None:
    with pytest.raises(BadRequest, match=message):
        parse_field_selector(text)


def test_field_selector_matching_and_exact_match() -> None:
    selector = parse_field_selector("metadata.name=web,status.phase!=Failed")
    assert selector.matches({"metadata.name": "web", "status.phase": "Running"})
    assert not selector.matches({"metadata.name": "web", "status.phase": "Failed"})
    assert parse_field_selector("spec.nodeName=").matches({})  # a missing field reads as ""
    assert selector.requires_exact_match("metadata.name") == "web"
    assert selector.requires_exact_match("status.phase") is None
    assert FieldSelector().matches({"anything": "x"})


# --- fields per kind -------------------------------------------------------------------------

POD = {
    "metadata": {"name": "web-1", "namespace": "default"},
    "spec": {"nodeName": "n1", "restartPolicy": "Always", "schedulerName": "default-scheduler",
             "serviceAccountName": "default", "hostNetwork": True},
    "status": {"phase": "Running", "podIP": "10.0.0.5", "podIPs": [{"ip": "10.0.0.5"}, {"ip": "fd00::5"}],
               "nominatedNodeName": ""},
}


def test_object_fields_pod() -> None:
    fields = object_fields("pods", POD)
    assert fields | {"spec.host": "n1"} == fields  # spec.host is the legacy alias of spec.nodeName
    assert {k: fields[k] for k in fields if k != "spec.host"} == {
        "metadata.name": "web-1", "metadata.namespace": "default", "spec.nodeName": "n1",
        "spec.restartPolicy": "Always", "spec.schedulerName": "default-scheduler",
        "spec.serviceAccountName": "default", "spec.hostNetwork": "true", "status.phase": "Running",
        "status.podIP": "10.0.0.5", "status.podIPs": "", "status.nominatedNodeName": "",
    }
    assert object_fields("pods", {"metadata": {"name": "p"}})["spec.hostNetwork"] == "false"


CORE_EVENT = {
    "metadata": {"name": "web.1", "namespace": "default"},
    "involvedObject": {"kind": "Pod", "namespace": "default", "name": "web", "uid": "u1",
                       "apiVersion": "v1", "resourceVersion": "7", "fieldPath": "spec.containers{web}"},
    "reason": "Started", "type": "Normal", "source": {"component": "kubelet"}, "reportingComponent": "kubelet",
}
V1_EVENT = {
    "metadata": {"name": "web.1", "namespace": "default"},
    "regarding": {"kind": "Pod", "namespace": "default", "name": "web", "uid": "u1", "apiVersion": "v1",
                  "resourceVersion": "7", "fieldPath": "spec.containers{web}"},
    "reason": "Started", "type": "Normal", "reportingController": "kubelet",
}


@pytest.mark.parametrize("event", [CORE_EVENT, V1_EVENT])
@pytest.mark.parametrize("group_resource", ["events", "events.events.k8s.io"])
def test_object_fields_event_either_shape(event: dict[str, Any], group_resource: str) -> None:
    fields = object_fields(group_resource, event)
    assert fields["involvedObject.kind"] == "Pod"
    assert fields["involvedObject.fieldPath"] == "spec.containers{web}"
    assert fields["reason"] == "Started" and fields["type"] == "Normal"
    assert fields["source"] == "kubelet" and fields["reportingComponent"] == "kubelet"


@pytest.mark.parametrize(("group_resource", "obj", "expected"), [
    ("nodes", {"metadata": {"name": "n1"}, "spec": {"unschedulable": True}}, {"spec.unschedulable": "true"}),
    ("nodes", {"metadata": {"name": "n1"}}, {"spec.unschedulable": "false"}),
    ("namespaces", {"metadata": {"name": "ns"}, "status": {"phase": "Active"}}, {"status.phase": "Active"}),
    ("secrets", {"metadata": {"name": "s"}, "type": "Opaque"}, {"type": "Opaque"}),
    ("services", {"spec": {"clusterIP": "10.96.0.1", "type": "ClusterIP"}},
     {"spec.clusterIP": "10.96.0.1", "spec.type": "ClusterIP"}),
    ("replicasets.apps", {"status": {"replicas": 3}}, {"status.replicas": "3"}),
    ("configmaps", {"metadata": {"name": "c", "namespace": "ns"}},
     {"metadata.name": "c", "metadata.namespace": "ns"}),
])
def test_object_fields_other_kinds(group_resource: str, obj: dict[str, Any], expected: dict[str, str]) -> None:
    fields = object_fields(group_resource, obj)
    assert {k: fields[k] for k in expected} == expected
    assert "metadata.name" in fields


# --- field labels each kind accepts ---------------------------------------------------------


@pytest.mark.parametrize(("group_resource", "text"), [
    ("pods", "spec.nodeName=n1,status.phase=Running,spec.hostNetwork=true,status.podIP=1.2.3.4"),
    ("pods", "spec.restartPolicy=Always,spec.schedulerName=s,spec.serviceAccountName=sa"),
    ("pods", "metadata.namespace=default,status.nominatedNodeName=n"),
    ("events", "involvedObject.kind=Pod,involvedObject.name=web,reason=Started,type=Normal,source=kubelet"),
    ("events", "involvedObject.uid=u,involvedObject.apiVersion=v1,involvedObject.resourceVersion=1"),
    ("events", "involvedObject.fieldPath=x,involvedObject.namespace=d,reportingComponent=k"),
    ("events.events.k8s.io", "regarding.kind=Pod,reportingController=kubelet,type=Normal"),
    ("namespaces", "status.phase=Active,metadata.name=default"),
    ("nodes", "spec.unschedulable=false,metadata.name=n1"),
    ("secrets", "type=Opaque,metadata.namespace=default"),
    ("services", "spec.clusterIP=None,spec.type=ClusterIP"),
    ("deployments.apps", "metadata.name=web,metadata.namespace=default"),
    ("configmaps", "metadata.name=c"),
])
def test_validate_field_selector_accepts(group_resource: str, text: str) -> None:
    validate_field_selector(group_resource, parse_field_selector(text))


@pytest.mark.parametrize(("group_resource", "text", "message"), [
    ("pods", "spec.containers=x", "field label not supported: spec.containers"),
    ("nodes", "metadata.namespace=x", "field label not supported: metadata.namespace"),
    ("namespaces", "metadata.namespace=x", "field label not supported: metadata.namespace"),
    ("events.events.k8s.io", "involvedObject.kind=Pod", "field label not supported: involvedObject.kind"),
    ("events", "regarding.kind=Pod", "field label not supported: regarding.kind"),
    ("services", "spec.ports=80", "field label not supported: spec.ports"),
    ("configmaps", "data=x", '"data" is not a known field selector: only "metadata.name", "metadata.namespace"'),
    # upstream registers no field label conversion for apps/v1 ReplicaSets (kubernetes#135136)
    ("replicasets.apps", "status.replicas=0",
     '"status.replicas" is not a known field selector: only "metadata.name", "metadata.namespace"'),
])
def test_validate_field_selector_rejects(group_resource: str, text: str, message: str) -> None:
    with pytest.raises(BadRequest, match=message):
        validate_field_selector(group_resource, parse_field_selector(text))


def test_validate_field_selector_converts_labels() -> None:
    converted = validate_field_selector("events.events.k8s.io",
                                        parse_field_selector("regarding.name=web,reportingController=kubelet"))
    assert str(converted) == "involvedObject.name=web,reportingComponent=kubelet"
    assert converted.matches(object_fields("events.events.k8s.io", V1_EVENT))
    assert str(validate_field_selector("pods", parse_field_selector("spec.host=n1"))) == "spec.nodeName=n1"


def test_unconverted_selector_still_matches_through_aliases() -> None:
    selector = parse_field_selector("regarding.kind=Pod,reportingController=kubelet")
    assert selector.matches(object_fields("events.events.k8s.io", CORE_EVENT))
    assert parse_field_selector("spec.host=n1").matches(object_fields("pods", POD))
