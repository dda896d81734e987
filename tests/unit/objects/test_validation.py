"""validate() and check_schema(): upstream's field paths, cause types and messages, rule by rule."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from kubelite.objects.defaults import apply_defaults
from kubelite.objects.errors import Cause
from kubelite.objects.registry import REGISTRY, ResourceType
from kubelite.objects.validation import check_schema, validate

Obj = dict[str, Any]

SUBDOMAIN_MSG = ("a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', "
                 "and must start and end with an alphanumeric character (e.g. 'example.com', regex used for "
                 "validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')")
LABEL_MSG = ("a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must "
             "start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for "
             "validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')")
DNS1035_MSG = ("a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an "
               "alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', "
               "regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')")
LABEL_NAME_MSG = ("name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end "
                  "with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for "
                  "validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')")
CONFIG_KEY_MSG = ("a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  "
                  "or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')")
POD_UPDATE_MSG = ("Forbidden: pod updates may not change fields other than `spec.containers[*].image`,"
                  "`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions "
                  "to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it "
                  "was previously negative)\n")


def rt(api_version: str, kind: str) -> ResourceType:
    found = REGISTRY.by_kind(api_version, kind)
    assert found is not None
    return found


KINDS = {
    "Pod": ("v1", "Pod"), "Deployment": ("apps/v1", "Deployment"), "ReplicaSet": ("apps/v1", "ReplicaSet"),
    "Service": ("v1", "Service"), "Namespace": ("v1", "Namespace"), "ConfigMap": ("v1", "ConfigMap"),
    "Secret": ("v1", "Secret"), "Node": ("v1", "Node"), "Endpoints": ("v1", "Endpoints"),
    "EndpointSlice": ("discovery.k8s.io/v1", "EndpointSlice"), "Lease": ("coordination.k8s.io/v1", "Lease"),
    "Event": ("v1", "Event"), "EventsV1": ("events.k8s.io/v1", "Event"), "Binding": ("v1", "Binding"),
    "ServiceAccount": ("v1", "ServiceAccount"),
}


def run(kind: str, obj: Obj, old: Obj | None = None, *, defaults: bool = True) -> list[Cause]:
    resource = rt(*KINDS[kind])
    obj = copy.deepcopy(obj)
    if defaults:
        apply_defaults(resource, obj)
    return validate(resource, obj, old=old)


def pairs(causes: list[Cause]) -> list[tuple[str, str]]:
    return [(c.field, c.message) for c in causes]


def stored(kind: str, obj: Obj) -> Obj:
    """An object as it sits in storage: defaulted, and valid."""
    obj = copy.deepcopy(obj)
    apply_defaults(rt(*KINDS[kind]), obj)
    assert run(kind, obj, defaults=False) == []
    return obj


def deployment(**spec: Any) -> Obj:
    """`kubectl create deployment web --image=nginx` as sent, plus the namespace from the URL."""
    base = {"replicas": 1, "selector": {"matchLabels": {"app": "web"}}, "strategy": {},
            "template": {"metadata": {"labels": {"app": "web"}},
                         "spec": {"containers": [{"name": "nginx", "image": "nginx", "resources": {}}]}}}
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "default", "labels": {"app": "web"}},
            "spec": without_nones({**base, **spec}), "status": {}}


def without_nones(spec: Obj) -> Obj:
    return {k: v for k, v in spec.items() if v is not None}


def pod(*containers: Obj, **spec: Any) -> Obj:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web", "namespace": "default"},
            "spec": {"containers": list(containers) or [{"name": "web", "image": "nginx"}], **spec}}


def container(**fields: Any) -> Obj:
    return {"name": "web", "image": "nginx", **fields}


def service(**spec: Any) -> Obj:
    base = {"ports": [{"name": "80-8080", "protocol": "TCP", "port": 80, "targetPort": 8080}],
            "selector": {"app": "web"}, "type": "ClusterIP"}
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "namespace": "default"},
            "spec": without_nones({**base, **spec})}


def config_map(**fields: Any) -> Obj:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cfg", "namespace": "default"},
            "data": {"a": "b"}, **fields}


# ----- valid objects --------------------------------------------------------------------------

TUTORIAL_DEPLOYMENT: Obj = {
    "apiVersion": "apps/v1", "kind": "Deployment",
    "metadata": {"name": "nginx-deployment", "namespace": "default", "labels": {"app": "nginx"}},
    "spec": {
        "replicas": 3,
        "selector": {"matchLabels": {"app": "nginx"}},
        "template": {
            "metadata": {"labels": {"app": "nginx"}},
            "spec": {"containers": [{
                "name": "nginx", "image": "nginx:1.14.2", "ports": [{"containerPort": 80}],
                "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}, "limits": {"memory": "128Mi"}},
                "readinessProbe": {"httpGet": {"path": "/", "port": 80}, "initialDelaySeconds": 5},
                "env": [{"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}],
                "volumeMounts": [{"name": "html", "mountPath": "/usr/share/nginx/html"}],
            }], "volumes": [{"name": "html", "emptyDir": {}}]},
        },
    },
}

VALID: list[tuple[str, Obj]] = [
    ("Deployment", deployment()),
    ("Deployment", TUTORIAL_DEPLOYMENT),
    ("Service", service()),
    ("Service", service(type="NodePort")),
    ("Service", service(clusterIP="None", ports=None)),
    ("Service", {"metadata": {"name": "db", "namespace": "default"},
                 "spec": {"type": "ExternalName", "externalName": "db.example.com."}}),
    ("Namespace", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "demo"}, "spec": {}, "status": {}}),
    ("ConfigMap", config_map()),
    ("Secret", {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s", "namespace": "default"},
                "data": {"password": "czNjcjN0"}}),
    ("ServiceAccount", {"metadata": {"name": "builder", "namespace": "default"}}),
    ("Pod", pod()),
    ("Node", {"metadata": {"name": "node-1", "labels": {"kubernetes.io/hostname": "node-1"}},
              "spec": {"podCIDR": "10.244.0.0/24", "podCIDRs": ["10.244.0.0/24"]},
              "status": {"capacity": {"cpu": "4", "memory": "8Gi", "pods": "110"}}}),
    ("Endpoints", {"metadata": {"name": "web", "namespace": "default"},
                   "subsets": [{"addresses": [{"ip": "10.244.0.5"}], "ports": [{"port": 8080}]}]}),
    ("EndpointSlice", {"metadata": {"name": "web-abc", "namespace": "default"}, "addressType": "IPv4",
                       "endpoints": [{"addresses": ["10.244.0.5"]}], "ports": [{"port": 8080}]}),
    ("Lease", {"metadata": {"name": "node-1", "namespace": "kube-node-lease"},
               "spec": {"holderIdentity": "node-1", "leaseDurationSeconds": 40}}),
    ("Event", {"metadata": {"name": "web.17a", "namespace": "default"}, "reason": "Started",
               "involvedObject": {"kind": "Pod", "name": "web", "namespace": "default"}}),
    ("EventsV1", {"metadata": {"name": "web.17b", "namespace": "default"}, "eventTime": "2024-01-01T00:00:00.000000Z",
                  "type": "Normal", "reason": "Started", "action": "Start", "reportingController": "kubelet",
                  "reportingInstance": "node-1", "regarding": {"kind": "Pod", "namespace": "default"}}),
    ("Binding", {"metadata": {"name": "web", "namespace": "default"}, "target": {"kind": "Node", "name": "node-1"}}),
]


@pytest.mark.parametrize(("kind", "obj"), VALID)
def test_valid_objects_have_no_causes(kind: str, obj: Obj) -> None:
    assert check_schema(rt(*KINDS[kind]), obj).ok
    assert run(kind, obj) == []


def test_a_valid_update_has_no_causes() -> None:
    old = stored("Deployment", TUTORIAL_DEPLOYMENT)
    new = copy.deepcopy(old)
    new["spec"]["replicas"] = 5
    new["spec"]["template"]["spec"]["containers"][0]["image"] = "nginx:1.25"
    assert run("Deployment", new, old) == []


# ----- metadata -------------------------------------------------------------------------------

def with_meta(obj: Obj, **meta: Any) -> Obj:
    obj = copy.deepcopy(obj)
    obj["metadata"].update(meta)
    return {**obj, "metadata": {k: v for k, v in obj["metadata"].items() if v is not None}}


META_CASES: list[tuple[str, Obj, str, str, str]] = [
    ("ConfigMap", with_meta(config_map(), name=None), "metadata.name", "FieldValueRequired",
     "Required value: name or generateName is required"),
    ("ConfigMap", with_meta(config_map(), name="Foo_Bar"), "metadata.name", "FieldValueInvalid",
     f'Invalid value: "Foo_Bar": {SUBDOMAIN_MSG}'),
    ("ConfigMap", with_meta(config_map(), name="a" * 254), "metadata.name", "FieldValueInvalid",
     f'Invalid value: "{"a" * 254}": must be no more than 253 characters'),
    ("ConfigMap", with_meta(config_map(), name=None, generateName="Bad_"), "metadata.generateName",
     "FieldValueInvalid", f'Invalid value: "Bad_": {SUBDOMAIN_MSG}'),
    ("Namespace", {"metadata": {"name": "team.a"}}, "metadata.name", "FieldValueInvalid",
     'Invalid value: "team.a": must not contain dots'),
    ("Namespace", {"metadata": {"name": "Team"}}, "metadata.name", "FieldValueInvalid",
     f'Invalid value: "Team": {LABEL_MSG}'),
    ("Service", with_meta(service(), name="1web"), "metadata.name", "FieldValueInvalid",
     f'Invalid value: "1web": {DNS1035_MSG}'),
    ("ConfigMap", with_meta(config_map(), namespace=None), "metadata.namespace", "FieldValueRequired",
     "Required value"),
    ("ConfigMap", with_meta(config_map(), namespace="Bad"), "metadata.namespace", "FieldValueInvalid",
     f'Invalid value: "Bad": {LABEL_MSG}'),
    ("Namespace", {"metadata": {"name": "a", "namespace": "default"}}, "metadata.namespace", "FieldValueForbidden",
     "Forbidden: not allowed on this type"),
    ("ConfigMap", with_meta(config_map(), labels={"-app": "x"}), "metadata.labels", "FieldValueInvalid",
     f'Invalid value: "-app": {LABEL_NAME_MSG}'),
    ("ConfigMap", with_meta(config_map(), labels={"app": "x" * 64}), "metadata.labels", "FieldValueInvalid",
     f'Invalid value: "{"x" * 64}": must be no more than 63 bytes'),
    ("ConfigMap", with_meta(config_map(), labels={"/app": "x"}), "metadata.labels", "FieldValueInvalid",
     'Invalid value: "/app": prefix part must be non-empty'),
    ("ConfigMap", with_meta(config_map(), annotations={"a/b/c": "x"}), "metadata.annotations", "FieldValueInvalid",
     'Invalid value: "a/b/c": a valid label key must consist of alphanumeric characters, \'-\', \'_\' or \'.\', '
     "and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex "
     "used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]') with an optional DNS subdomain prefix "
     "and '/' (e.g. 'example.com/MyName')"),
    ("ConfigMap", with_meta(config_map(), annotations={"big": "x" * (256 * 1024)}), "metadata.annotations",
     "FieldValueTooLong", "Too long: may not be more than 262144 bytes"),
    ("ConfigMap", with_meta(config_map(), ownerReferences=[{"apiVersion": "apps/v1", "kind": "Deployment",
                                                            "name": "web"}]),
     "metadata.ownerReferences[0].uid", "FieldValueRequired", "Required value: must not be empty"),
    ("ConfigMap", with_meta(config_map(), ownerReferences=[{"apiVersion": "a/b/c", "kind": "K", "name": "n",
                                                            "uid": "u"}]),
     "metadata.ownerReferences[0].apiVersion", "FieldValueInvalid",
     'Invalid value: "a/b/c": must be <group>/<version> or <version>'),
    ("ConfigMap", with_meta(config_map(), finalizers=["cleanup"]), "metadata.finalizers[0]", "FieldValueInvalid",
     'Invalid value: "cleanup": name is neither a standard finalizer name nor is it fully qualified'),
    ("ConfigMap", with_meta(config_map(), generation=-1), "metadata.generation", "FieldValueInvalid",
     "Invalid value: -1: must be greater than or equal to 0"),
]


@pytest.mark.parametrize(("kind", "obj", "field", "ctype", "message"), META_CASES)
def test_metadata_rules(kind: str, obj: Obj, field: str, ctype: str, message: str) -> None:
    causes = run(kind, obj)
    assert Cause(ctype, message, field) in causes, pairs(causes)


def test_generate_name_stands_in_for_a_name() -> None:
    assert run("ConfigMap", with_meta(config_map(), name=None, generateName="cfg-")) == []


def test_two_controller_owner_references() -> None:
    refs = [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": n, "uid": n, "controller": True}
            for n in ("a", "b")]
    causes = run("ConfigMap", with_meta(config_map(), ownerReferences=refs))
    assert pairs(causes) == [(
        "metadata.ownerReferences",
        'Invalid value: [{"apiVersion":"apps/v1","kind":"ReplicaSet","name":"a","uid":"a","controller":true},'
        '{"apiVersion":"apps/v1","kind":"ReplicaSet","name":"b","uid":"b","controller":true}]: Only one reference '
        'can have Controller set to true. Found "true" in references for ReplicaSet/a and ReplicaSet/b')]


def test_metadata_is_immutable_on_update() -> None:
    old = stored("ConfigMap", with_meta(config_map(), uid="u1", creationTimestamp="2024-01-01T00:00:00Z"))
    new = with_meta(old, name="other", uid="u2")
    assert pairs(run("ConfigMap", new, old)) == [
        ("metadata.name", 'Invalid value: "other": field is immutable'),
        ("metadata.uid", 'Invalid value: "u2": field is immutable'),
    ]
    # fields the client leaves out are filled from storage by the server
    assert run("ConfigMap", with_meta(old, uid=None, creationTimestamp=None), old) == []


def test_no_new_finalizers_while_deleting() -> None:
    old = stored("ConfigMap", with_meta(config_map(), deletionTimestamp="2024-01-01T00:00:00Z",
                                        finalizers=["example.com/a"]))
    new = with_meta(old, finalizers=["example.com/a", "example.com/b"])
    assert pairs(run("ConfigMap", new, old)) == [(
        "metadata.finalizers",
        'Forbidden: no new finalizers can be added if the object is being deleted, found new finalizers '
        '[]string{"example.com/b"}')]


def test_path_segment_names_for_kinds_without_name_rules() -> None:
    event = {"metadata": {"name": "a%b", "namespace": "default"},
             "involvedObject": {"kind": "Pod", "namespace": "default"}}
    assert pairs(run("Event", event)) == [("metadata.name", "Invalid value: \"a%b\": may not contain '%'")]
    assert pairs(run("Event", {"metadata": {"namespace": "default"}})) == [
        ("metadata.name", "Required value: name or generateName is required")]


# ----- pods -----------------------------------------------------------------------------------

POD_CASES: list[tuple[Obj, str, str, str]] = [
    (pod(containers=[]), "spec.containers", "FieldValueRequired", "Required value"),
    (pod(container(name="Web")), "spec.containers[0].name", "FieldValueInvalid",
     f'Invalid value: "Web": {LABEL_MSG}'),
    (pod(container(), container()), "spec.containers[1].name", "FieldValueDuplicate", 'Duplicate value: "web"'),
    (pod(container(image="")), "spec.containers[0].image", "FieldValueRequired", "Required value"),
    (pod(container(ports=[{"containerPort": 70000}])), "spec.containers[0].ports[0].containerPort",
     "FieldValueInvalid", "Invalid value: 70000: must be between 1 and 65535, inclusive"),
    (pod(container(ports=[{"containerPort": 80, "protocol": "HTTP"}])), "spec.containers[0].ports[0].protocol",
     "FieldValueNotSupported", 'Unsupported value: "HTTP": supported values: "SCTP", "TCP", "UDP"'),
    (pod(container(ports=[{"containerPort": 80, "name": "http"}, {"containerPort": 81, "name": "http"}])),
     "spec.containers[0].ports[1].name", "FieldValueDuplicate", 'Duplicate value: "http"'),
    (pod(container(imagePullPolicy="Sometimes")), "spec.containers[0].imagePullPolicy", "FieldValueNotSupported",
     'Unsupported value: "Sometimes": supported values: "Always", "IfNotPresent", "Never"'),
    (pod(restartPolicy="Sometimes"), "spec.restartPolicy", "FieldValueNotSupported",
     'Unsupported value: "Sometimes": supported values: "Always", "OnFailure", "Never"'),
    (pod(dnsPolicy="Cluster"), "spec.dnsPolicy", "FieldValueNotSupported",
     'Unsupported value: "Cluster": supported values: "ClusterFirstWithHostNet", "ClusterFirst", "Default", "None"'),
    (pod(container(resources={"requests": {"cpu": "2"}, "limits": {"cpu": "1"}})),
     "spec.containers[0].resources.requests", "FieldValueInvalid",
     'Invalid value: "2": must be less than or equal to cpu limit of 1'),
    (pod(container(resources={"limits": {"memory": "-1Mi"}})), "spec.containers[0].resources.limits[memory]",
     "FieldValueInvalid", 'Invalid value: "-1Mi": must be greater than or equal to 0'),
    (pod(container(resources={"requests": {"gpu": "1"}})), "spec.containers[0].resources.requests[gpu]",
     "FieldValueInvalid", 'Invalid value: "gpu": must be a standard resource for containers'),
    (pod(container(resources={"requests": {"example.com/dongle": "1"}})), "spec.containers[0].resources.limits",
     "FieldValueRequired", "Required value: Limit must be set for non overcommitable resources"),
    (pod(container(env=[{"name": "A=B", "value": "x"}])), "spec.containers[0].env[0].name", "FieldValueInvalid",
     "Invalid value: \"A=B\": a valid environment variable name must consist only of printable ASCII characters "
     "other than '='"),
    (pod(container(env=[{"name": "A", "value": "x", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}])),
     "spec.containers[0].env[0].valueFrom", "FieldValueInvalid",
     'Invalid value: "": may not be specified when `value` is not empty'),
    (pod(container(env=[{"name": "A", "valueFrom": {"fieldRef": {"fieldPath": "spec.restartPolicy"}}}])),
     "spec.containers[0].env[0].valueFrom.fieldRef.fieldPath", "FieldValueNotSupported",
     'Unsupported value: "spec.restartPolicy": supported values: "metadata.name", "metadata.namespace", '
     '"metadata.uid", "spec.nodeName", "spec.serviceAccountName", "status.hostIP", "status.hostIPs", '
     '"status.podIP", "status.podIPs"'),
    (pod(container(env=[{"name": "A", "valueFrom": {"secretKeyRef": {"name": "s", "key": "a b"}}}])),
     "spec.containers[0].env[0].valueFrom.secretKeyRef.key", "FieldValueInvalid",
     f'Invalid value: "a b": {CONFIG_KEY_MSG}'),
    (pod(volumes=[{"name": "data", "emptyDir": {}}, {"name": "data", "emptyDir": {}}]), "spec.volumes[1].name",
     "FieldValueDuplicate", 'Duplicate value: "data"'),
    (pod(volumes=[{"name": "data", "emptyDir": {}, "hostPath": {"path": "/x"}}]), "spec.volumes[0].hostPath",
     "FieldValueForbidden", "Forbidden: may not specify more than 1 volume type"),
    (pod(volumes=[{"name": "cfg", "configMap": {"name": "c", "defaultMode": 1000}}]),
     "spec.volumes[0].configMap.defaultMode", "FieldValueInvalid",
     "Invalid value: 1000: must be a number between 0 and 0777 (octal), both inclusive"),
    (pod(container(volumeMounts=[{"name": "missing", "mountPath": "/data"}])),
     "spec.containers[0].volumeMounts[0].name", "FieldValueNotFound", 'Not found: "missing"'),
    (pod(container(livenessProbe={"tcpSocket": {"port": 80}, "periodSeconds": -1})),
     "spec.containers[0].livenessProbe.periodSeconds", "FieldValueInvalid",
     "Invalid value: -1: must be greater than or equal to 0"),
    (pod(container(livenessProbe={"tcpSocket": {"port": 80}, "successThreshold": 2})),
     "spec.containers[0].livenessProbe.successThreshold", "FieldValueInvalid", "Invalid value: 2: must be 1"),
    (pod(container(readinessProbe={"periodSeconds": 5})), "spec.containers[0].readinessProbe",
     "FieldValueRequired", "Required value: must specify a handler type"),
    (pod(container(readinessProbe={"httpGet": {"port": "web-http-port-too-long"}})),
     "spec.containers[0].readinessProbe.httpGet.port", "FieldValueInvalid",
     'Invalid value: "web-http-port-too-long": must be no more than 15 characters'),
    (pod(activeDeadlineSeconds=0), "spec.activeDeadlineSeconds", "FieldValueInvalid",
     "Invalid value: 0: must be between 1 and 2147483647, inclusive"),
    (pod(tolerations=[{"operator": "Equal", "value": "x"}]), "spec.tolerations[0].operator", "FieldValueInvalid",
     'Invalid value: "Equal": operator must be Exists when `key` is empty, which means "match all values and all '
     'keys"'),
    (pod(securityContext={"runAsUser": -1}), "spec.securityContext.runAsUser", "FieldValueInvalid",
     "Invalid value: -1: must be between 0 and 2147483647, inclusive"),
    (pod(container(image=" nginx")), "spec.containers[0].image", "FieldValueInvalid",
     'Invalid value: " nginx": must not have leading or trailing whitespace'),
]


@pytest.mark.parametrize(("obj", "field", "ctype", "message"), POD_CASES)
def test_pod_rules(obj: Obj, field: str, ctype: str, message: str) -> None:
    causes = run("Pod", obj)
    assert Cause(ctype, message, field) in causes, pairs(causes)


def test_required_fields_are_reported_when_defaults_did_not_run() -> None:
    causes = run("Pod", pod(), defaults=False)
    assert ("spec.containers[0].imagePullPolicy", "Required value") in pairs(causes)
    assert ("spec.terminationGracePeriodSeconds", "Required value") in pairs(causes)


def test_unknown_resource_name_gets_both_upstream_messages() -> None:
    # requests are defaulted from limits on pods, so both lists carry the bad name
    causes = pairs(run("Pod", pod(container(resources={"limits": {"gpu": "1"}}))))
    assert causes == [
        (f"spec.containers[0].resources.{kind}[gpu]", f'Invalid value: "gpu": {message}')
        for kind in ("limits", "requests")
        for message in ("must be a standard resource type or fully qualified",
                        "must be a standard resource for containers")
    ]


def test_pod_update_may_change_image_and_add_tolerations() -> None:
    old = stored("Pod", pod())
    new = copy.deepcopy(old)
    new["spec"]["containers"][0]["image"] = "nginx:1.25"
    new["spec"]["tolerations"].append({"key": "example.com/x", "operator": "Exists"})
    new["spec"]["activeDeadlineSeconds"] = 60
    assert run("Pod", new, old) == []


def test_pod_update_may_not_change_other_fields() -> None:
    old = stored("Pod", pod())
    new = copy.deepcopy(old)
    new["spec"]["restartPolicy"] = "Never"
    [cause] = run("Pod", new, old)
    assert (cause.type, cause.field) == ("FieldValueForbidden", "spec")
    assert cause.message.startswith(POD_UPDATE_MSG)
    assert '"Never"' in cause.message


@pytest.mark.parametrize(("change", "field", "message"), [
    (lambda s: s["containers"].append({"name": "b", "image": "x"}), "spec.containers",
     "Forbidden: pod updates may not add or remove containers"),
    (lambda s: s["tolerations"].pop(0), "spec.tolerations",
     "Forbidden: existing toleration can not be modified except its tolerationSeconds"),
])
def test_pod_update_forbidden_changes(change: Callable[[Obj], Any], field: str, message: str) -> None:
    old = stored("Pod", pod(tolerations=[{"key": "example.com/gpu", "operator": "Exists"}]))
    new = copy.deepcopy(old)
    change(new["spec"])
    assert (field, message) in pairs(run("Pod", new, old))


def test_pod_active_deadline_may_only_shrink() -> None:
    old = stored("Pod", pod(activeDeadlineSeconds=30))
    new = copy.deepcopy(old)
    new["spec"]["activeDeadlineSeconds"] = 60
    assert pairs(run("Pod", new, old)) == [
        ("spec.activeDeadlineSeconds", "Invalid value: 60: must be less than or equal to previous value")]


def test_ephemeral_containers_cannot_be_set_on_create() -> None:
    obj = pod(ephemeralContainers=[{"name": "debug", "image": "busybox"}])
    assert ("spec.ephemeralContainers", "Forbidden: cannot be set on create") in pairs(run("Pod", obj))


# ----- deployments and replica sets -----------------------------------------------------------

DEPLOYMENT_CASES: list[tuple[Obj, list[tuple[str, str]]]] = [
    (deployment(selector=None), [
        ("spec.selector", "Required value"),
        ("spec.template.metadata.labels",
         'Invalid value: {"app":"web"}: `selector` does not match template `labels`')]),
    (deployment(selector={}), [("spec.selector", "Invalid value: {}: empty selector is invalid for deployment")]),
    (deployment(selector={"matchLabels": {"app": "api"}}), [
        ("spec.template.metadata.labels",
         'Invalid value: {"app":"web"}: `selector` does not match template `labels`')]),
    (deployment(replicas=-1), [("spec.replicas", "Invalid value: -1: must be greater than or equal to 0")]),
    (deployment(revisionHistoryLimit=-1),
     [("spec.revisionHistoryLimit", "Invalid value: -1: must be greater than or equal to 0")]),
    (deployment(minReadySeconds=10, progressDeadlineSeconds=5),
     [("spec.progressDeadlineSeconds", "Invalid value: 5: must be greater than minReadySeconds")]),
    (deployment(strategy={"type": "BlueGreen"}), [
        ("spec.strategy",
         'Unsupported value: {"Type":"BlueGreen","RollingUpdate":null}: supported values: "Recreate", '
         '"RollingUpdate"')]),
    (deployment(strategy={"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 0, "maxUnavailable": 0}}),
     [("spec.strategy.rollingUpdate.maxUnavailable", "Invalid value: 0: may not be 0 when `maxSurge` is 0")]),
    (deployment(strategy={"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "0%", "maxUnavailable": "0%"}}),
     [("spec.strategy.rollingUpdate.maxUnavailable", 'Invalid value: "0%": may not be 0 when `maxSurge` is 0')]),
    (deployment(strategy={"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "half"}}), [
        ("spec.strategy.rollingUpdate.maxUnavailable",
         "Invalid value: \"half\": a valid percent string must be a numeric string followed by an ending '%' "
         "(e.g. '1%',  or '93%', regex used for validation is '[0-9]+%')")]),
    (deployment(strategy={"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "150%"}}),
     [("spec.strategy.rollingUpdate.maxUnavailable", 'Invalid value: "150%": must not be greater than 100%')]),
    (deployment(strategy={"type": "Recreate", "rollingUpdate": {"maxSurge": 1}}),
     [("spec.strategy.rollingUpdate", "Forbidden: may not be specified when strategy `type` is 'Recreate'")]),
    (deployment(selector={"matchExpressions": [{"key": "app", "operator": "Near", "values": ["web"]}]}), [
        ("spec.selector.matchExpressions[0].operator", 'Invalid value: "Near": not a valid selector operator'),
        ("spec.selector", 'Invalid value: {"matchExpressions":[{"key":"app","operator":"Near","values":["web"]}]}: '
                          "invalid label selector")]),
]


@pytest.mark.parametrize(("obj", "expected"), DEPLOYMENT_CASES)
def test_deployment_rules(obj: Obj, expected: list[tuple[str, str]]) -> None:
    assert pairs(run("Deployment", obj)) == expected


def test_deployment_template_must_restart_always() -> None:
    obj = deployment()
    obj["spec"]["template"]["spec"]["restartPolicy"] = "OnFailure"
    assert pairs(run("Deployment", obj)) == [
        ("spec.template.spec.restartPolicy", 'Unsupported value: "OnFailure": supported values: "Always"')]


def test_deployment_template_pod_spec_is_validated_with_its_path() -> None:
    obj = deployment()
    obj["spec"]["template"]["spec"]["containers"][0]["image"] = ""
    assert pairs(run("Deployment", obj)) == [("spec.template.spec.containers[0].image", "Required value")]


@pytest.mark.parametrize("kind", ["Deployment", "ReplicaSet"])
def test_selector_is_immutable(kind: str) -> None:
    old_obj = deployment()
    old_obj["kind"] = kind
    if kind == "ReplicaSet":
        del old_obj["spec"]["strategy"]
    old = stored(kind, old_obj)
    new = copy.deepcopy(old)
    new["spec"]["selector"] = {"matchLabels": {"app": "web", "tier": "front"}}
    new["spec"]["template"]["metadata"]["labels"]["tier"] = "front"
    assert pairs(run(kind, new, old)) == [
        ("spec.selector", 'Invalid value: {"matchLabels":{"app":"web","tier":"front"}}: field is immutable')]


def test_replica_set_rules() -> None:
    obj = deployment(replicas=-2, minReadySeconds=-1)
    obj["kind"] = "ReplicaSet"
    del obj["spec"]["strategy"]
    assert pairs(run("ReplicaSet", obj)) == [
        ("spec.replicas", "Invalid value: -2: must be greater than or equal to 0"),
        ("spec.minReadySeconds", "Invalid value: -1: must be greater than or equal to 0"),
    ]


# ----- services -------------------------------------------------------------------------------

SERVICE_CASES: list[tuple[Obj, str, str, str]] = [
    (service(ports=[]), "spec.ports", "FieldValueRequired", "Required value"),
    (service(ports=[{"port": 0}]), "spec.ports[0].port", "FieldValueInvalid",
     "Invalid value: 0: must be between 1 and 65535, inclusive"),
    (service(ports=[{"port": 80}, {"port": 443}]), "spec.ports[0].name", "FieldValueRequired", "Required value"),
    (service(ports=[{"port": 80, "name": "web"}, {"port": 443, "name": "web"}]), "spec.ports[1].name",
     "FieldValueDuplicate", 'Duplicate value: "web"'),
    (service(ports=[{"port": 80, "protocol": "ICMP"}]), "spec.ports[0].protocol", "FieldValueNotSupported",
     'Unsupported value: "ICMP": supported values: "SCTP", "TCP", "UDP"'),
    (service(ports=[{"port": 80, "targetPort": 70000}]), "spec.ports[0].targetPort", "FieldValueInvalid",
     "Invalid value: 70000: must be between 1 and 65535, inclusive"),
    (service(type="Internal"), "spec.type", "FieldValueNotSupported",
     'Unsupported value: "Internal": supported values: "ClusterIP", "ExternalName", "LoadBalancer", "NodePort"'),
    (service(type="ExternalName", selector=None, ports=None), "spec.externalName", "FieldValueRequired",
     "Required value"),
    (service(sessionAffinity="Sticky"), "spec.sessionAffinity", "FieldValueNotSupported",
     'Unsupported value: "Sticky": supported values: "ClientIP", "None"'),
    (service(ports=[{"port": 80, "nodePort": 30080}]), "spec.ports[0].nodePort", "FieldValueForbidden",
     "Forbidden: may not be used when `type` is 'ClusterIP'"),
    (service(type="NodePort", ports=[{"port": 80, "nodePort": 8080}]), "spec.ports[0].nodePort", "FieldValueInvalid",
     "Invalid value: 8080: provided port is not in the valid range. The range of valid ports is 30000-32767"),
    (service(type="NodePort", clusterIP="None"), "spec.clusterIPs[0]", "FieldValueInvalid",
     "Invalid value: \"None\": may not be set to 'None' for NodePort services"),
    (service(clusterIP="10.96.0.300"), "spec.clusterIPs[0]", "FieldValueInvalid",
     'Invalid value: "10.96.0.300": must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)'),
    (service(externalTrafficPolicy="Local"), "spec.externalTrafficPolicy", "FieldValueInvalid",
     'Invalid value: "Local": may only be set for externally-accessible services'),
]


@pytest.mark.parametrize(("obj", "field", "ctype", "message"), SERVICE_CASES)
def test_service_rules(obj: Obj, field: str, ctype: str, message: str) -> None:
    causes = run("Service", obj)
    assert Cause(ctype, message, field) in causes, pairs(causes)


@pytest.mark.parametrize("both", [False, True])
def test_cluster_ip_is_immutable(both: bool) -> None:
    old = stored("Service", service(clusterIP="10.96.0.10", clusterIPs=["10.96.0.10"]))
    new = copy.deepcopy(old)
    new["spec"]["clusterIP"] = "10.96.0.20"
    if both:
        new["spec"]["clusterIPs"] = ["10.96.0.20"]
    assert pairs(run("Service", new, old)) == [
        ("spec.clusterIPs[0]", 'Invalid value: ["10.96.0.20"]: may not change once set')]


# ----- other kinds ----------------------------------------------------------------------------

def test_namespace_spec_finalizers() -> None:
    obj = {"metadata": {"name": "demo"}, "spec": {"finalizers": ["cleanup"]}}
    assert pairs(run("Namespace", obj)) == [
        ("spec.finalizers", 'Invalid value: "cleanup": name is neither a standard finalizer name nor is it fully '
                            "qualified")]


def test_config_map_keys_and_size() -> None:
    assert pairs(run("ConfigMap", config_map(data={"a b": "x"}))) == [
        ("data[a b]", f'Invalid value: "a b": {CONFIG_KEY_MSG}')]
    assert pairs(run("ConfigMap", config_map(data={"..": "x"}))) == [
        ("data[..]", "Invalid value: \"..\": must not be '..'")]
    big = config_map(data={"a": "x" * (1024 * 1024), "b": "y"})
    assert run("ConfigMap", big) == [Cause("FieldValueTooLong", "Too long: may not be more than 1048576 bytes", "[]")]


def test_immutable_config_map() -> None:
    old = stored("ConfigMap", config_map(immutable=True))
    new = copy.deepcopy(old)
    new["data"]["a"] = "changed"
    assert pairs(run("ConfigMap", new, old)) == [("data", "Forbidden: field is immutable when `immutable` is set")]


def secret(**fields: Any) -> Obj:
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s", "namespace": "default"}, **fields}


def test_secret_rules() -> None:
    assert pairs(run("Secret", secret(data={"a/b": "eA=="}))) == [
        ("data[a/b]", 'Invalid value: "a/b": ' + CONFIG_KEY_MSG)]
    assert pairs(run("Secret", secret(type="kubernetes.io/tls", data={}))) == [
        ("data[tls.crt]", "Required value"), ("data[tls.key]", "Required value")]
    old = stored("Secret", secret(data={"a": "eA=="}))
    new = {**copy.deepcopy(old), "type": "kubernetes.io/basic-auth", "data": {"username": "eA=="}}
    assert pairs(run("Secret", new, old)) == [("type", 'Invalid value: "kubernetes.io/basic-auth": field is immutable')]
    big = secret(data={"a": "AAAA" * (1024 * 1024 // 3 + 2)})
    assert pairs(run("Secret", big)) == [("data", "Too long: may not be more than 1048576 bytes")]


def test_node_rules() -> None:
    node = {"metadata": {"name": "n1"}, "spec": {"taints": [{"key": "dedicated", "effect": "Sometimes"}]}}
    assert pairs(run("Node", node)) == [
        ("metadata.taints[0].effect",
         'Unsupported value: "Sometimes": supported values: "NoSchedule", "PreferNoSchedule", "NoExecute"')]
    old = stored("Node", {"metadata": {"name": "n1"}, "spec": {"podCIDRs": ["10.244.0.0/24"]}})
    new = copy.deepcopy(old)
    new["spec"]["podCIDRs"] = ["10.244.1.0/24"]
    assert pairs(run("Node", new, old)) == [
        ("spec.podCIDRs", 'Forbidden: node updates may not change podCIDR except from "" to valid')]


def test_endpoints_rules() -> None:
    obj = {"metadata": {"name": "web", "namespace": "default"},
           "subsets": [{"ports": [{"port": 80}]}, {"addresses": [{"ip": "127.0.0.1"}]}]}
    assert pairs(run("Endpoints", obj)) == [
        ("subsets[0]", "Required value: must specify `addresses` or `notReadyAddresses`"),
        ("subsets[1].addresses[0].ip", 'Invalid value: "127.0.0.1": may not be in the loopback range '
                                       "(127.0.0.0/8, ::1/128)"),
    ]


def test_endpoint_slice_rules() -> None:
    obj = {"metadata": {"name": "web-1", "namespace": "default"}, "endpoints": [{"addresses": []}],
           "ports": [{"port": 80, "protocol": "HTTP"}]}
    assert pairs(run("EndpointSlice", obj)) == [
        ("addressType", "Required value"),
        ("endpoints[0].addresses", "Required value: must contain at least 1 address"),
        ("ports[0].protocol", 'Unsupported value: "HTTP": supported values: "SCTP", "TCP", "UDP"'),
    ]


def test_lease_rules() -> None:
    obj = {"metadata": {"name": "l", "namespace": "default"}, "spec": {"leaseDurationSeconds": 0,
                                                                        "leaseTransitions": -1}}
    assert pairs(run("Lease", obj)) == [
        ("spec.leaseDurationSeconds", "Invalid value: 0: must be greater than 0"),
        ("spec.leaseTransitions", "Invalid value: -1: must be greater than or equal to 0"),
    ]


def test_event_rules() -> None:
    legacy = {"metadata": {"name": "e", "namespace": "default"}, "involvedObject": {"namespace": "other"}}
    assert pairs(run("Event", legacy)) == [
        ("involvedObject.namespace", 'Invalid value: "other": does not match event.namespace')]
    new_style = {"metadata": {"name": "e", "namespace": "default"}, "type": "Normal",
                 "regarding": {"namespace": "default"}}
    assert pairs(run("EventsV1", new_style)) == [("eventTime", "Required value")]


def test_binding_needs_a_target() -> None:
    assert pairs(run("Binding", {"metadata": {"name": "p", "namespace": "default"}, "target": {"kind": "Pod"}})) == [
        ("target.kind", 'Unsupported value: "Pod": supported values: "Node", "<empty>"'),
        ("target.name", "Required value")]


# ----- check_schema ---------------------------------------------------------------------------

def schema(kind: str, obj: Obj) -> tuple[list[str], list[str]]:
    report = check_schema(rt(*KINDS[kind]), obj)
    return report.unknown_fields, report.type_errors


def test_unknown_fields_use_strict_decoding_paths() -> None:
    obj = deployment()
    obj["spec"]["foo"] = 1
    obj["spec"]["template"]["spec"]["containers"][0]["imagePullPolicyy"] = "Always"
    obj["metadata"]["labels"]["anything"] = "goes"
    obj["Spec"] = {}
    assert schema("Deployment", obj) == ([
        'unknown field "spec.template.spec.containers[0].imagePullPolicyy"',
        'unknown field "spec.foo"',
        'unknown field "Spec"',
    ], [])


@pytest.mark.parametrize(("mutate", "message"), [
    (lambda d: d["spec"].update(replicas="3"),
     "json: cannot unmarshal string into Go struct field DeploymentSpec.spec.replicas of type int32"),
    (lambda d: d["spec"].update(replicas=1.5),
     "json: cannot unmarshal number 1.5 into Go struct field DeploymentSpec.spec.replicas of type int32"),
    (lambda d: d["spec"].update(template="web"),
     "json: cannot unmarshal string into Go struct field DeploymentSpec.spec.template of type v1.PodTemplateSpec"),
    (lambda d: d["spec"]["template"]["spec"].update(containers={}),
     "json: cannot unmarshal object into Go struct field PodSpec.spec.template.spec.containers of type "
     "[]v1.Container"),
    (lambda d: d["spec"]["template"]["spec"]["containers"][0].update(ports=[{"containerPort": "80"}]),
     "json: cannot unmarshal string into Go struct field ContainerPort.spec.template.spec.containers.ports."
     "containerPort of type int32"),
    (lambda d: d["spec"]["template"]["spec"].update(hostNetwork="yes"),
     "json: cannot unmarshal string into Go struct field PodSpec.spec.template.spec.hostNetwork of type bool"),
    (lambda d: d["metadata"]["labels"].update(version=2),
     "json: cannot unmarshal number into Go struct field ObjectMeta.metadata.labels of type string"),
    (lambda d: d["spec"].update(strategy={"rollingUpdate": {"maxSurge": True}}),
     "json: cannot unmarshal bool into Go struct field RollingUpdateDeployment.spec.strategy.rollingUpdate."
     "maxSurge of type int32"),
    (lambda d: d["spec"]["template"]["spec"]["containers"][0].update(resources={"limits": []}),
     "json: cannot unmarshal array into Go struct field ResourceRequirements.spec.template.spec.containers."
     "resources.limits of type v1.ResourceList"),
    (lambda d: d["spec"]["template"]["spec"]["containers"][0].update(resources={"limits": {"cpu": "1 core"}}),
     "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"),
    (lambda d: d["spec"]["template"]["spec"]["containers"][0].update(resources={"limits": {"memory": "1Gb"}}),
     "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"),
    (lambda d: d["spec"]["template"]["spec"]["containers"][0].update(resources={"limits": {"memory": "1kk"}}),
     "unable to parse quantity's suffix"),
    (lambda d: d["metadata"].update(creationTimestamp="yesterday"),
     'parsing time "yesterday" as "2006-01-02T15:04:05Z07:00": cannot parse "yesterday" as "2006"'),
    (lambda d: d["metadata"].update(creationTimestamp="2024-13-01T00:00:00Z"),
     'parsing time "2024-13-01T00:00:00Z": month out of range'),
])
def test_type_errors_in_upstream_decoder_words(mutate: Callable[[Obj], Any], message: str) -> None:
    obj = deployment()
    mutate(obj)
    unknown, errors = schema("Deployment", obj)
    assert (unknown, errors) == ([], [message])


def test_unknown_fields_can_be_dropped() -> None:
    obj = deployment()
    obj["spec"]["foo"] = 1
    obj["spec"]["template"]["spec"]["containers"][0]["bar"] = {"x": 1}
    report = check_schema(rt("apps/v1", "Deployment"), obj)
    report.drop_unknown_fields()
    assert obj == deployment()
    assert report.unknown_fields == ['unknown field "spec.template.spec.containers[0].bar"', 'unknown field "spec.foo"']


def test_a_wrongly_typed_subtree_is_not_searched_for_unknown_fields() -> None:
    obj = deployment()
    obj["spec"]["selector"] = ["app=web"]
    assert schema("Deployment", obj) == ([], [
        "json: cannot unmarshal array into Go struct field DeploymentSpec.spec.selector of type v1.LabelSelector"])


@pytest.mark.parametrize(("data", "message"), [
    ("abc!", "illegal base64 data at input byte 3"),
    ("abc", "illegal base64 data at input byte 0"),
    ("YQ=", "illegal base64 data at input byte 3"),
    ("YQ==YQ==", "illegal base64 data at input byte 4"),
])
def test_secret_data_must_be_base64(data: str, message: str) -> None:
    assert schema("Secret", secret(data={"a": data})) == ([], [message])


def test_secret_base64_accepts_newlines_and_string_data() -> None:
    assert schema("Secret", secret(data={"a": "YWJj\nZGVm"}, stringData={"b": "plain"})) == ([], [])


def test_micro_time_needs_microseconds() -> None:
    lease = {"metadata": {"name": "l"}, "spec": {"renewTime": "2024-01-01T00:00:00Z"}}
    assert schema("Lease", lease) == ([], [
        'parsing time "2024-01-01T00:00:00Z" as "2006-01-02T15:04:05.000000Z07:00": cannot parse "Z" as ".000000"'])
    lease["spec"]["renewTime"] = "2024-01-01T00:00:00.123456Z"
    assert schema("Lease", lease) == ([], [])


def test_managed_fields_and_nulls_are_accepted() -> None:
    obj = deployment()
    obj["metadata"]["managedFields"] = [{"manager": "kubectl", "fieldsType": "FieldsV1",
                                         "fieldsV1": {"f:spec": {"f:replicas": {}}}}]
    obj["spec"]["paused"] = None
    assert check_schema(rt("apps/v1", "Deployment"), obj).ok
