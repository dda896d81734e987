"""PATCH semantics: JSON patch, JSON merge patch, strategic merge patch and apply.

Expected results come from upstream's documented behaviour: RFC 6902/7386, the strategic-merge-patch
devel doc (kubernetes/community), apimachinery's strategicpatch test cases, the apiserver PATCH
handler's error codes, and the exact bodies kubectl sends.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from kubelite.objects.errors import (
    BadRequest,
    Invalid,
    RequestEntityTooLarge,
    StatusError,
    UnsupportedMediaType,
)
from kubelite.objects.patch import (
    SUPPORTED_PATCH_TYPES,
    apply_patch,
    json_patch,
    merge_patch,
    strategic_merge_patch,
)

DEPLOYMENT = "io.k8s.api.apps.v1.Deployment"
POD_SPEC = "io.k8s.api.core.v1.PodSpec"


def deployment() -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "hello", "namespace": "default", "labels": {"app": "hello"},
                     "annotations": {"deployment.kubernetes.io/revision": "2"}},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "hello"}},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}},
            "template": {
                "metadata": {"labels": {"app": "hello"}},
                "spec": {
                    "containers": [
                        {"name": "hello", "image": "IMG:v1", "args": ["--a", "--b"],
                         "ports": [{"containerPort": 80, "protocol": "TCP"},
                                   {"containerPort": 8080, "protocol": "TCP"}],
                         "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
                         "volumeMounts": [{"name": "data", "mountPath": "/data"}]},
                        {"name": "sidecar", "image": "side:v1"},
                    ],
                    "tolerations": [{"key": "a", "operator": "Exists"}],
                    "volumes": [{"name": "data", "emptyDir": {}}],
                },
            },
        },
    }


def containers(obj: dict[str, Any]) -> list[dict[str, Any]]:
    return obj["spec"]["template"]["spec"]["containers"]


def smp(original: dict[str, Any], patch: dict[str, Any], definition: str = DEPLOYMENT) -> dict[str, Any]:
    before = copy.deepcopy(original)
    snapshot = copy.deepcopy(patch)
    result = strategic_merge_patch(original, patch, definition)
    assert original == before, "original was mutated"
    assert patch == snapshot, "patch was mutated"
    return result


# --- JSON merge patch (RFC 7386) ------------------------------------------------------------


def test_merge_patch_scale_body() -> None:
    obj = deployment()
    result = merge_patch(obj, {"spec": {"replicas": 4}})
    assert result["spec"]["replicas"] == 4
    assert result["spec"]["template"] == obj["spec"]["template"]
    assert obj["spec"]["replicas"] == 2


def test_merge_patch_label_add_and_null_removes() -> None:
    added = merge_patch(deployment(), {"metadata": {"labels": {"version": "v1"}}})
    assert added["metadata"]["labels"] == {"app": "hello", "version": "v1"}
    removed = merge_patch(added, {"metadata": {"labels": {"version": None}}})
    assert removed["metadata"]["labels"] == {"app": "hello"}


@pytest.mark.parametrize(("target", "patch", "expected"), [
    # RFC 7386 appendix A
    ({"a": "b"}, {"a": "c"}, {"a": "c"}),
    ({"a": "b"}, {"b": "c"}, {"a": "b", "b": "c"}),
    ({"a": "b"}, {"a": None}, {}),
    ({"a": "b", "b": "c"}, {"a": None}, {"b": "c"}),
    ({"a": ["b"]}, {"a": "c"}, {"a": "c"}),
    ({"a": "c"}, {"a": ["b"]}, {"a": ["b"]}),
    ({"a": {"b": "c"}}, {"a": {"b": "d", "c": None}}, {"a": {"b": "d"}}),
    ({"a": [{"b": "c"}]}, {"a": [1]}, {"a": [1]}),
    ({"e": None}, {"a": 1}, {"e": None, "a": 1}),
    ({}, {"a": {"bb": {"ccc": None}}}, {"a": {"bb": {}}}),
])
def test_merge_patch_rfc7386_examples(target: dict[str, Any], patch: dict[str, Any],
                                      expected: dict[str, Any]) -> None:
    assert merge_patch(target, patch) == expected


def test_merge_patch_lists_are_replaced_not_merged() -> None:
    result = merge_patch(deployment(), {"spec": {"template": {"spec": {"containers": [{"name": "x"}]}}}})
    assert containers(result) == [{"name": "x"}]


@pytest.mark.parametrize("patch", [None, "x", 3, True])
def test_merge_patch_null_or_scalar_is_bad_request(patch: Any) -> None:
    with pytest.raises(BadRequest, match="Invalid JSON Patch"):
        merge_patch({"a": 1}, patch)


def test_merge_patch_array_is_invalid() -> None:
    with pytest.raises(Invalid):
        merge_patch({"a": 1}, [1, 2])


# --- JSON patch (RFC 6902) ------------------------------------------------------------------


def test_json_patch_rollout_undo_body() -> None:
    obj = deployment()
    template = copy.deepcopy(obj["spec"]["template"])
    template["spec"]["containers"][0]["image"] = "IMG:v0"
    ops = [
        {"op": "replace", "path": "/spec/template", "value": template},
        {"op": "replace", "path": "/metadata/annotations",
         "value": {"deployment.kubernetes.io/revision": "1"}},
    ]
    result = json_patch(obj, ops)
    assert containers(result)[0]["image"] == "IMG:v0"
    assert result["metadata"]["annotations"] == {"deployment.kubernetes.io/revision": "1"}
    assert containers(obj)[0]["image"] == "IMG:v1"


def test_json_patch_add_test_move_copy() -> None:
    ops = [
        {"op": "test", "path": "/spec/replicas", "value": 2},
        {"op": "add", "path": "/metadata/labels/tier", "value": "web"},
        {"op": "copy", "from": "/metadata/labels/tier", "path": "/metadata/labels/copy"},
        {"op": "move", "from": "/metadata/labels/copy", "path": "/metadata/labels/moved"},
        {"op": "remove", "path": "/spec/strategy/rollingUpdate"},
        {"op": "add", "path": "/spec/template/spec/containers/-", "value": {"name": "x", "image": "x"}},
    ]
    result = json_patch(deployment(), ops)
    assert result["metadata"]["labels"] == {"app": "hello", "tier": "web", "moved": "web"}
    assert result["spec"]["strategy"] == {"type": "RollingUpdate"}
    assert [c["name"] for c in containers(result)] == ["hello", "sidecar", "x"]


def test_json_patch_null_is_a_no_op() -> None:
    assert json_patch({"a": 1}, None) == {"a": 1}


@pytest.mark.parametrize("ops", [
    [{"op": "remove", "path": "/spec/nothere"}],
    [{"op": "replace", "path": "/metadata/nothere", "value": 1}],
    [{"op": "test", "path": "/spec/replicas", "value": 3}],
    [{"op": "frobnicate", "path": "/spec"}],
    [{"path": "/spec"}],
    [{"op": "add", "path": "/no/such/parent", "value": 1}],
    [{"op": "add", "path": "spec", "value": 1}],
])
def test_json_patch_that_does_not_apply_is_invalid(ops: list[dict[str, Any]]) -> None:
    # apiserver: 422 with a generic message (patch.go applyJSPatch).
    with pytest.raises(Invalid, match="the server rejected our request due to an error in our request"):
        json_patch(deployment(), ops)


@pytest.mark.parametrize(("ops", "message"), [
    ({"op": "add"}, "cannot unmarshal object into Go value of type jsonpatch.Patch"),
    ("x", "cannot unmarshal string"),
    (["add"], "cannot unmarshal string into Go value of type jsonpatch.Operation"),
])
def test_json_patch_not_a_list_of_operations_is_bad_request(ops: Any, message: str) -> None:
    with pytest.raises(BadRequest, match=message):
        json_patch({}, ops)


def test_json_patch_too_many_operations() -> None:
    ops = [{"op": "test", "path": "/a", "value": 1}] * 10001
    with pytest.raises(RequestEntityTooLarge, match="maximum operations in a JSON patch is 10000, got 10001"):
        json_patch({"a": 1}, ops)


def test_json_patch_result_must_be_an_object() -> None:
    with pytest.raises(Invalid) as err:
        json_patch({"a": 1}, [{"op": "replace", "path": "", "value": [1]}])
    assert err.value.causes[0].field == "patch"


# --- strategic merge patch: kubectl's bodies -------------------------------------------------


def test_smp_kubectl_set_image() -> None:
    body = {"spec": {"template": {"spec": {"$setElementOrder/containers": [{"name": "hello"}],
                                           "containers": [{"image": "IMG:v2", "name": "hello"}]}}}}
    result = smp(deployment(), body)
    assert [(c["name"], c["image"]) for c in containers(result)] == [("hello", "IMG:v2"), ("sidecar", "side:v1")]
    assert containers(result)[0]["ports"] == containers(deployment())[0]["ports"]
    assert "$setElementOrder/containers" not in result["spec"]["template"]["spec"]


def test_smp_kubectl_scale_and_label_bodies() -> None:
    result = smp(deployment(), {"spec": {"replicas": 4}, "metadata": {"labels": {"version": "v1"}}})
    assert result["spec"]["replicas"] == 4
    assert result["metadata"]["labels"] == {"app": "hello", "version": "v1"}
    result = smp(result, {"metadata": {"labels": {"version": None}}})
    assert result["metadata"]["labels"] == {"app": "hello"}


def test_smp_kubectl_apply_three_way_diff_removes_port_and_env() -> None:
    # What client-side `kubectl apply` sends after port 8080 and env B left the manifest.
    body = {
        "metadata": {"annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{...}"}},
        "spec": {"template": {"spec": {
            "$setElementOrder/containers": [{"name": "hello"}, {"name": "sidecar"}],
            "containers": [{
                "$setElementOrder/env": [{"name": "A"}],
                "$setElementOrder/ports": [{"containerPort": 80}],
                "env": [{"$patch": "delete", "name": "B"}],
                "name": "hello",
                "ports": [{"$patch": "delete", "containerPort": 8080}],
            }],
        }}},
    }
    result = smp(deployment(), body)
    hello = containers(result)[0]
    assert hello["ports"] == [{"containerPort": 80, "protocol": "TCP"}]
    assert hello["env"] == [{"name": "A", "value": "1"}]
    assert hello["image"] == "IMG:v1" and hello["args"] == ["--a", "--b"]
    assert [c["name"] for c in containers(result)] == ["hello", "sidecar"]
    assert result["metadata"]["annotations"] == {
        "deployment.kubernetes.io/revision": "2",
        "kubectl.kubernetes.io/last-applied-configuration": "{...}",
    }


# --- strategic merge patch: schema-driven merging -------------------------------------------


def test_smp_merges_containers_by_name_and_new_items_go_first() -> None:
    # kubernetes.io "Update API Objects in Place Using kubectl patch": the added container is listed
    # before the existing one; upstream puts patch items before server-only items that did not
    # precede them.
    result = smp(deployment(), {"spec": {"template": {"spec": {"containers": [{"name": "redis", "image": "redis"}]}}}})
    assert [c["name"] for c in containers(result)] == ["redis", "hello", "sidecar"]
    assert containers(result)[1]["image"] == "IMG:v1"


def test_smp_order_interleaves_patch_and_live_items() -> None:
    result = smp(deployment(), {"spec": {"template": {"spec": {"containers": [
        {"name": "sidecar", "image": "side:v2"}, {"name": "new", "image": "n"}]}}}})
    assert [c["name"] for c in containers(result)] == ["hello", "sidecar", "new"]


@pytest.mark.parametrize(("field", "item", "merged"), [
    ("ports", {"containerPort": 80, "name": "http"}, {"containerPort": 80, "protocol": "TCP", "name": "http"}),
    ("env", {"name": "B", "value": "3"}, {"name": "B", "value": "3"}),
    ("volumeMounts", {"mountPath": "/data", "readOnly": True}, {"name": "data", "mountPath": "/data", "readOnly": True}),
])
def test_smp_merge_keys_from_schema(field: str, item: dict[str, Any], merged: dict[str, Any]) -> None:
    body = {"spec": {"template": {"spec": {"containers": [{"name": "hello", field: [item]}]}}}}
    result = containers(smp(deployment(), body))[0][field]
    assert merged in result
    assert len(result) == len(containers(deployment())[0][field])


def test_smp_service_ports_merge_by_port() -> None:
    svc = {"spec": {"ports": [{"port": 80, "targetPort": 8080}, {"port": 443}]}}
    result = smp(svc, {"spec": {"ports": [{"port": 80, "targetPort": 9090}]}}, "io.k8s.api.core.v1.Service")
    assert result["spec"]["ports"] == [{"port": 80, "targetPort": 9090}, {"port": 443}]


def test_smp_lists_without_strategy_are_replaced() -> None:
    body = {"spec": {"template": {"spec": {
        "tolerations": [{"key": "b", "operator": "Exists"}],
        "containers": [{"name": "hello", "args": ["--c"]}],
    }}}}
    result = smp(deployment(), body)
    assert result["spec"]["template"]["spec"]["tolerations"] == [{"key": "b", "operator": "Exists"}]
    assert containers(result)[0]["args"] == ["--c"]


def test_smp_maps_merge_recursively_and_null_deletes() -> None:
    body = {"spec": {"strategy": {"rollingUpdate": {"maxSurge": 1, "maxUnavailable": None}},
                     "template": {"metadata": {"labels": {"tier": "web"}}}}}
    result = smp(deployment(), body)
    assert result["spec"]["strategy"] == {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}}
    assert result["spec"]["template"]["metadata"]["labels"] == {"app": "hello", "tier": "web"}


def test_smp_new_values_lose_their_nulls() -> None:
    result = smp({"metadata": {"name": "x"}}, {"metadata": {"labels": {"a": "1", "b": None}}})
    assert result == {"metadata": {"name": "x", "labels": {"a": "1"}}}


def test_smp_schemaless_parts_behave_like_merge_patch() -> None:
    # Annotations are a string map; an unknown definition has no patch metadata at all.
    result = smp(deployment(), {"metadata": {"annotations": {"a": "1", "deployment.kubernetes.io/revision": None}}})
    assert result["metadata"]["annotations"] == {"a": "1"}
    result = smp({"items": [{"name": "a"}], "m": {"x": 1}}, {"items": [{"name": "b"}], "m": {"y": 2}},
                 "io.example.Unknown")
    assert result == {"items": [{"name": "b"}], "m": {"x": 1, "y": 2}}


def test_smp_primitive_merge_list_is_a_set() -> None:
    # apimachinery "unique scalars when merging lists": [1,2] + [2,3] -> [1,2,3]
    obj = {"metadata": {"finalizers": ["a", "b"]}}
    result = smp(obj, {"metadata": {"finalizers": ["b", "c"]}})
    assert result["metadata"]["finalizers"] == ["a", "b", "c"]


def test_smp_merge_list_of_empty_patch_keeps_items() -> None:
    result = smp(deployment(), {"spec": {"template": {"spec": {"containers": []}}}})
    assert [c["name"] for c in containers(result)] == ["hello", "sidecar"]


# --- strategic merge patch: directives ------------------------------------------------------


def test_directive_replace_in_map() -> None:
    # community doc: "$patch: replace" in a map takes the map literally.
    body = {"spec": {"template": {"spec": {"$patch": "replace", "containers": [{"name": "only", "image": "i"}]}}}}
    result = smp(deployment(), body)
    assert result["spec"]["template"]["spec"] == {"containers": [{"name": "only", "image": "i"}]}


def test_directive_replace_in_list() -> None:
    body = {"spec": {"template": {"spec": {"containers": [{"name": "nginx", "image": "nginx-1.0"},
                                                          {"$patch": "replace"}]}}}}
    result = smp(deployment(), body)
    assert containers(result) == [{"name": "nginx", "image": "nginx-1.0"}]


def test_directive_replace_alone_empties_a_merging_list() -> None:
    # apimachinery "delete all items from merging list".
    result = smp(deployment(), {"spec": {"template": {"spec": {"containers": [{"$patch": "replace"}]}}}})
    assert containers(result) == []


def test_directive_delete_in_list_removes_every_match() -> None:
    # community doc: "Delete operation will delete all entries in the list that match the merge key."
    pod = {"containers": [{"name": "a"}, {"name": "a", "image": "dup"}, {"name": "b"}, {"name": "c"}]}
    body = {"containers": [{"$patch": "delete", "name": "a"}, {"$patch": "delete", "name": "missing"},
                           {"name": "c", "image": "c2"}]}
    result = smp(pod, body, POD_SPEC)
    assert result["containers"] == [{"name": "b"}, {"name": "c", "image": "c2"}]


def test_directive_delete_in_map() -> None:
    # The doc calls `rollingUpdate: {$patch: delete}` a deletion; upstream's code (checked with
    # `kubectl patch --local`) leaves an empty struct, and an empty string map that its encoder omits.
    result = smp(deployment(), {"spec": {"strategy": {"rollingUpdate": {"$patch": "delete"}}}})
    assert result["spec"]["strategy"] == {"type": "RollingUpdate", "rollingUpdate": {}}
    result = smp(deployment(), {"metadata": {"labels": {"$patch": "delete"}}})
    assert "labels" not in result["metadata"]
    untouched = smp({"spec": {}}, {"spec": {"strategy": {"rollingUpdate": {"$patch": "delete"}}}})
    assert untouched == {"spec": {"strategy": {}}}


def test_directive_merge_in_map_is_the_default() -> None:
    result = smp({"metadata": {"labels": {"a": "1"}}}, {"metadata": {"labels": {"$patch": "merge", "b": "2"}}})
    assert result["metadata"]["labels"] == {"a": "1", "b": "2"}


def test_directive_retain_keys_clears_other_fields() -> None:
    # kubectl apply switching a Deployment to Recreate sends $retainKeys for the union.
    body = {"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate"}}}
    result = smp(deployment(), body)
    assert result["spec"]["strategy"] == {"type": "Recreate"}


def test_directive_retain_keys_doc_example() -> None:
    result = smp({"union": {"foo": "a", "other": "b"}},
                 {"union": {"$retainKeys": ["another", "bar"], "another": "d", "bar": "c"}}, "")
    assert result == {"union": {"another": "d", "bar": "c"}}


def test_directive_retain_keys_must_list_patched_fields() -> None:
    body = {"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate", "rollingUpdate": {}}}}
    with pytest.raises(BadRequest, match="invalid patch format of retainKeys"):
        smp(deployment(), body)
    with pytest.raises(BadRequest, match="invalid patch format of retainKeys"):
        smp(deployment(), {"spec": {"strategy": {"$retainKeys": "type"}}})


def test_directive_set_element_order_reorders_maps() -> None:
    body = {"spec": {"template": {"spec": {"$setElementOrder/containers": [{"name": "sidecar"}, {"name": "hello"}]}}}}
    assert [c["name"] for c in containers(smp(deployment(), body))] == ["sidecar", "hello"]


def test_directive_set_element_order_keeps_server_only_items_in_place() -> None:
    # apimachinery "set elements order in a list with server-only items 2".
    pod = {"containers": [{"name": "1", "other": "a"}, {"name": "2"}, {"name": "9"}, {"name": "3"}, {"name": "4"}]}
    body = {"$setElementOrder/containers": [{"name": "2"}, {"name": "1"}, {"name": "4"}, {"name": "3"}]}
    assert [c["name"] for c in smp(pod, body, POD_SPEC)["containers"]] == ["2", "1", "9", "4", "3"]


def test_directive_set_element_order_with_additions() -> None:
    # apimachinery "add multiple items in a list and preserve order".
    pod = {"containers": [{"name": "1", "other": "a"}, {"name": "2", "value": "2"}]}
    body = {"$setElementOrder/containers": [{"name": "1"}, {"name": "4"}, {"name": "2"}, {"name": "3"}],
            "containers": [{"name": "4", "value": "4"}, {"name": "3", "value": "3"}]}
    result = smp(pod, body, POD_SPEC)["containers"]
    assert result == [{"name": "1", "other": "a"}, {"name": "4", "value": "4"},
                      {"name": "2", "value": "2"}, {"name": "3", "value": "3"}]


def test_directive_set_element_order_with_removal_addition_and_server_only_item() -> None:
    # `kubectl apply` replacing container "old" by "new" while an injected "proxy" lives on; the
    # expected order is what `kubectl patch --local` (upstream's Go code) produces.
    pod = {"containers": [{"name": "old"}, {"name": "app"}, {"name": "proxy"}]}
    body = {"$setElementOrder/containers": [{"name": "app"}, {"name": "new"}],
            "containers": [{"name": "new", "image": "n"}, {"$patch": "delete", "name": "old"}]}
    assert [c["name"] for c in smp(pod, body, POD_SPEC)["containers"]] == ["app", "proxy", "new"]


def test_directive_set_element_order_for_primitives() -> None:
    # community doc: finalizers [a,b,c] + $setElementOrder [b,c,a] -> [b,c,a]
    obj = {"metadata": {"finalizers": ["a", "b", "c"]}}
    result = smp(obj, {"metadata": {"$setElementOrder/finalizers": ["b", "c", "a"]}})
    assert result["metadata"]["finalizers"] == ["b", "c", "a"]


def test_directive_set_element_order_must_match_patch_order() -> None:
    pod = {"containers": [{"name": "1"}, {"name": "3"}, {"name": "2"}]}
    body = {"$setElementOrder/containers": [{"name": "1"}, {"name": "2"}, {"name": "3"}],
            "containers": [{"name": "3", "value": "3"}, {"name": "1", "value": "1"}]}
    with pytest.raises(Invalid, match="doesn't match"):
        smp(pod, body, POD_SPEC)


def test_directive_delete_from_primitive_list() -> None:
    # community doc: finalizers [a,b,c] minus [b,c] -> [a]
    obj = {"metadata": {"finalizers": ["a", "b", "c"]}}
    assert smp(obj, {"metadata": {"$deleteFromPrimitiveList/finalizers": ["b", "c"]}}) == {
        "metadata": {"finalizers": ["a"]}}
    # deleting what is not there adds nothing, on a missing list creates nothing
    assert smp(obj, {"metadata": {"$deleteFromPrimitiveList/finalizers": ["z"]}}) == obj
    assert smp({"metadata": {}}, {"metadata": {"$deleteFromPrimitiveList/finalizers": ["z"]}}) == {"metadata": {}}


def test_directive_delete_from_primitive_list_without_merge_strategy() -> None:
    result = smp(deployment(), {"spec": {"template": {"spec": {"containers": [
        {"name": "hello", "$deleteFromPrimitiveList/args": ["--a"]}]}}}})
    assert containers(result)[0]["args"] == ["--b"]


def test_no_directive_survives_in_the_result() -> None:
    body = {"spec": {"template": {"spec": {"volumes": [{"name": "new", "$patch": "replace", "emptyDir": {}},
                                                       {"$patch": "delete", "name": "gone"}]}}}}
    result = smp({"spec": {}}, body)
    assert "$patch" not in json.dumps(result)
    assert result["spec"]["template"]["spec"]["volumes"] == []


# --- strategic merge patch: errors ----------------------------------------------------------


@pytest.mark.parametrize(("body", "error", "message"), [
    ({"spec": {"template": {"spec": {"containers": [{"image": "x"}]}}}}, Invalid,
     "map: map\\[image:x\\] does not contain declared merge key: name"),
    ({"spec": {"$patch": "explode"}}, Invalid, "unknown patch type: explode"),
    ({"spec": {"template": {"spec": {"containers": [{"$patch": "merge"}]}}}}, Invalid,
     "merging lists cannot yet be specified in the patch"),
    ({"metadata": {"finalizers": [["a"]]}}, Invalid, "lists of lists are not supported"),
    ({"metadata": {"finalizers": ["a", {"b": 1}]}}, Invalid, "list element types are not identical"),
    ({"metadata": {"$setElementOrder": ["a"]}}, BadRequest, "invalid patch format of setElementOrder list"),
    ({"metadata": {"$deleteFromPrimitiveListfinalizers": ["a"]}}, BadRequest,
     "invalid patch format of primitive list"),
    ({"metadata": {"$setElementOrder/finalizers": "a"}}, Invalid, "expected a \\[\\]interface {}"),
])
def test_smp_bad_patches(body: dict[str, Any], error: type[StatusError], message: str) -> None:
    with pytest.raises(error, match=message):
        smp(deployment(), body)


def test_smp_patch_must_be_an_object() -> None:
    with pytest.raises(BadRequest, match="cannot unmarshal array"):
        strategic_merge_patch({}, [], DEPLOYMENT)  # type: ignore[arg-type]


# --- apply_patch: dispatch on Content-Type --------------------------------------------------


def body(value: Any) -> bytes:
    return json.dumps(value).encode()


def test_supported_patch_types_in_upstream_order() -> None:
    assert SUPPORTED_PATCH_TYPES == ("application/json-patch+json", "application/merge-patch+json",
                                     "application/strategic-merge-patch+json", "application/apply-patch+yaml")


@pytest.mark.parametrize(("content_type", "patch", "containers_after"), [
    ("application/merge-patch+json", {"spec": {"template": {"spec": {"containers": [{"name": "x"}]}}}}, ["x"]),
    ("application/strategic-merge-patch+json; charset=utf-8",
     {"spec": {"template": {"spec": {"containers": [{"name": "x"}]}}}}, ["x", "hello", "sidecar"]),
    ("application/json-patch+json", [{"op": "remove", "path": "/spec/template/spec/containers/1"}], ["hello"]),
])
def test_apply_patch_dispatches_on_media_type(content_type: str, patch: Any, containers_after: list[str]) -> None:
    obj = deployment()
    result = apply_patch(obj, body(patch), content_type, definition=DEPLOYMENT)
    assert [c["name"] for c in containers(result)] == containers_after
    assert obj == deployment()


def test_apply_patch_strategic_null_body_is_a_no_op() -> None:
    assert apply_patch(deployment(), b"null", "application/strategic-merge-patch+json",
                       definition=DEPLOYMENT) == deployment()


def test_apply_patch_unsupported_media_type() -> None:
    with pytest.raises(UnsupportedMediaType) as err:
        apply_patch({}, b"{}", "application/json", definition=DEPLOYMENT)
    assert err.value.code == 415
    assert err.value.message == (
        "the body of the request was in an unknown format - accepted media types include: "
        "application/json-patch+json, application/merge-patch+json, "
        "application/strategic-merge-patch+json, application/apply-patch+yaml")


@pytest.mark.parametrize("content_type", ["application/json-patch+json", "application/merge-patch+json",
                                          "application/strategic-merge-patch+json"])
@pytest.mark.parametrize("raw", [b"{", b"not json", b"", b'{"a": NaN}', b"\xff"])
def test_apply_patch_unparseable_json_is_bad_request(content_type: str, raw: bytes) -> None:
    with pytest.raises(BadRequest, match="invalid JSON patch"):
        apply_patch({}, raw, content_type, definition=DEPLOYMENT)


def test_apply_patch_strategic_non_object_is_bad_request() -> None:
    with pytest.raises(BadRequest, match="cannot unmarshal array"):
        apply_patch({}, b"[1]", "application/strategic-merge-patch+json", definition=DEPLOYMENT)


MANIFEST = b"""
apiVersion: apps/v1
kind: Deployment
metadata:
  name: hello
  labels: {app: hello, managed: "yes"}
  annotations:
    created: 2024-01-01T00:00:00Z
spec:
  replicas: 3
  template:
    spec:
      containers:
      - name: hello
        image: IMG:v3
"""


def test_apply_patch_server_side_apply_merges_manifest() -> None:
    result = apply_patch(deployment(), MANIFEST, "application/apply-patch+yaml", definition=DEPLOYMENT)
    assert result["spec"]["replicas"] == 3
    assert result["metadata"]["labels"] == {"app": "hello", "managed": "yes"}
    assert result["metadata"]["annotations"]["created"] == "2024-01-01T00:00:00Z"
    assert [(c["name"], c["image"]) for c in containers(result)] == [("hello", "IMG:v3"), ("sidecar", "side:v1")]
    assert containers(result)[0]["ports"] == containers(deployment())[0]["ports"]


def test_apply_patch_server_side_apply_creates_from_nothing() -> None:
    result = apply_patch({}, body({"apiVersion": "v1", "kind": "ConfigMap", "data": {"a": "1"}}),
                         "application/apply-patch+yaml", definition="io.k8s.api.core.v1.ConfigMap")
    assert result == {"apiVersion": "v1", "kind": "ConfigMap", "data": {"a": "1"}}


@pytest.mark.parametrize(("raw", "message"), [
    (b"a: [1, 2\nb: c", "error encoding patch: error converting YAML to JSON: yaml: line"),
    (b"- 1\n- 2\n", "error decoding patch: json: cannot unmarshal array"),
    (b"apiVersion: apps/v2\nkind: Deployment\n", "Incorrect version specified in apply patch. "
                                                 "Specified patch version: apps/v2, expected: apps/v1"),
])
def test_apply_patch_server_side_apply_errors(raw: bytes, message: str) -> None:
    with pytest.raises(BadRequest, match=message):
        apply_patch(deployment(), raw, "application/apply-patch+yaml", definition=DEPLOYMENT)


def test_apply_patch_too_deeply_nested_is_bad_request() -> None:
    raw = b'{"a":' * 5000 + b"1" + b"}" * 5000
    with pytest.raises(BadRequest, match="nested too deeply"):
        apply_patch({}, raw, "application/merge-patch+json", definition="")
