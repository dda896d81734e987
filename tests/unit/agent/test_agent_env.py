"""Environment resolution: envFrom, valueFrom sources, $(VAR) expansion as upstream (pure)."""

from __future__ import annotations

from typing import Any

import pytest

from kubelite.agent.env import EnvError, PodFacts, Sources, expand, references, resolve_env, service_env

Obj = dict[str, Any]
FACTS = PodFacts(pod_ips=("198.18.0.5",), host_ip="198.19.128.16", node_allocatable={"cpu": "4", "memory": "16Gi"})


def pod(*containers: Obj) -> Obj:
    return {"metadata": {"name": "web", "namespace": "ns", "uid": "u1", "labels": {"app": "web"},
                         "annotations": {"note": "hi"}},
            "spec": {"nodeName": "n1", "serviceAccountName": "sa", "containers": list(containers)}}


@pytest.mark.parametrize(("text", "result"), [
    ("$(A)", "1"), ("x$(A)y$(B)", "x1y2"), ("$(MISSING)", "$(MISSING)"), ("$$(A)", "$(A)"),
    ("$$", "$"), ("$", "$"), ("a$b", "a$b"), ("$(A", "$(A"), ("$()", "$()"), ("100$", "100$"),
])
def test_expansion(text: str, result: str) -> None:
    assert expand(text, {"A": "1", "B": "2"}.get) == result


def test_env_order_expansion_and_override() -> None:
    container = {"name": "app", "envFrom": [{"configMapRef": {"name": "cfg"}, "prefix": "CFG_"}],
                 "env": [{"name": "A", "value": "one"}, {"name": "B", "value": "$(A)-$(CFG_K)-$(C)"},
                         {"name": "C", "value": "late"}, {"name": "A", "value": "again"}]}
    env, skipped = resolve_env(pod(container), container, Sources(config_maps={"cfg": {"K": "v", "bad=key": "x"}}),
                               FACTS)
    assert env == [("CFG_K", "v"), ("A", "again"), ("B", "one-v-$(C)"), ("C", "late")]
    assert skipped == ["CFG_bad=key"]


def test_field_and_resource_refs() -> None:
    refs = {"NAME": "metadata.name", "NS": "metadata.namespace", "UID": "metadata.uid",
            "APP": "metadata.labels['app']", "NOTE": "metadata.annotations['note']", "NODE": "spec.nodeName",
            "SA": "spec.serviceAccountName", "IP": "status.podIP", "HOST": "status.hostIP"}
    container: Obj = {"name": "app", "resources": {"limits": {"memory": "64Mi"}, "requests": {"cpu": "250m"}},
                      "env": [{"name": k, "valueFrom": {"fieldRef": {"fieldPath": v}}} for k, v in refs.items()]}
    container["env"] += [
        {"name": "MEM", "valueFrom": {"resourceFieldRef": {"resource": "limits.memory", "divisor": "1Mi"}}},
        {"name": "CPU_REQ", "valueFrom": {"resourceFieldRef": {"resource": "requests.cpu", "divisor": "1m"}}},
        {"name": "CPU_LIMIT", "valueFrom": {"resourceFieldRef": {"resource": "limits.cpu"}}},
        {"name": "CPU_ROUNDED", "valueFrom": {"resourceFieldRef": {"resource": "requests.cpu"}}},
    ]
    env = dict(resolve_env(pod(container), container, Sources(), FACTS)[0])
    assert env == {"NAME": "web", "NS": "ns", "UID": "u1", "APP": "web", "NOTE": "hi", "NODE": "n1", "SA": "sa",
                   "IP": "198.18.0.5", "HOST": "198.19.128.16", "MEM": "64", "CPU_REQ": "250",
                   "CPU_LIMIT": "4", "CPU_ROUNDED": "1"}


def test_config_map_and_secret_keys_optional_and_missing() -> None:
    container = {"name": "app", "env": [
        {"name": "K", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "k"}}},
        {"name": "S", "valueFrom": {"secretKeyRef": {"name": "sec", "key": "password"}}},
        {"name": "OPT", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "nope", "optional": True}}},
        {"name": "GONE", "valueFrom": {"secretKeyRef": {"name": "nosuch", "key": "x", "optional": True}}}]}
    sources = Sources(config_maps={"cfg": {"k": "v"}}, secrets={"sec": {"password": "pw"}, "nosuch": None})
    assert resolve_env(pod(container), container, sources, FACTS)[0] == [("K", "v"), ("S", "pw")]
    assert references([container]) == ({"cfg"}, {"sec", "nosuch"})


@pytest.mark.parametrize(("var", "message"), [
    ({"configMapKeyRef": {"name": "cfg", "key": "missing"}}, "couldn't find key missing in ConfigMap ns/cfg"),
    ({"configMapKeyRef": {"name": "nosuch", "key": "k"}}, 'configmap "nosuch" not found'),
    ({"secretKeyRef": {"name": "sec", "key": "missing"}}, "couldn't find key missing in Secret ns/sec"),
])
def test_missing_required_references_are_config_errors(var: Obj, message: str) -> None:
    container = {"name": "app", "env": [{"name": "X", "valueFrom": var}]}
    sources = Sources(config_maps={"cfg": {"k": "v"}, "nosuch": None}, secrets={"sec": {}})
    with pytest.raises(EnvError, match=message):
        resolve_env(pod(container), container, sources, FACTS)


def test_env_from_a_missing_object() -> None:
    container = {"name": "app", "envFrom": [{"secretRef": {"name": "gone"}}]}
    with pytest.raises(EnvError, match='secret "gone" not found'):
        resolve_env(pod(container), container, Sources(secrets={"gone": None}), FACTS)
    container["envFrom"][0]["secretRef"]["optional"] = True
    assert resolve_env(pod(container), container, Sources(secrets={"gone": None}), FACTS)[0] == []


def svc(name: str, namespace: str, ip: str, *ports: Obj) -> Obj:
    return {"metadata": {"name": name, "namespace": namespace}, "spec": {"clusterIP": ip, "ports": list(ports)}}


def test_service_links() -> None:
    services = [svc("kubernetes", "default", "198.19.0.1", {"name": "https", "port": 443, "protocol": "TCP"}),
                svc("other", "default", "198.19.0.9", {"port": 80}),
                svc("my-db", "ns", "198.19.0.5", {"name": "sql", "port": 5432, "protocol": "TCP"},
                    {"port": 53, "protocol": "UDP"}),
                svc("headless", "ns", "None", {"port": 80})]
    env = service_env(services, namespace="ns", enable_links=True)
    assert env["KUBERNETES_SERVICE_HOST"] == "198.19.0.1" and env["KUBERNETES_SERVICE_PORT_HTTPS"] == "443"
    assert env["KUBERNETES_PORT"] == "tcp://198.19.0.1:443"
    assert {k: v for k, v in env.items() if k.startswith("MY_DB")} == {
        "MY_DB_SERVICE_HOST": "198.19.0.5", "MY_DB_SERVICE_PORT": "5432", "MY_DB_SERVICE_PORT_SQL": "5432",
        "MY_DB_PORT": "tcp://198.19.0.5:5432", "MY_DB_PORT_5432_TCP": "tcp://198.19.0.5:5432",
        "MY_DB_PORT_5432_TCP_PROTO": "tcp", "MY_DB_PORT_5432_TCP_PORT": "5432", "MY_DB_PORT_5432_TCP_ADDR": "198.19.0.5",
        "MY_DB_PORT_53_UDP": "udp://198.19.0.5:53", "MY_DB_PORT_53_UDP_PROTO": "udp",
        "MY_DB_PORT_53_UDP_PORT": "53", "MY_DB_PORT_53_UDP_ADDR": "198.19.0.5"}
    assert not any(k.startswith(("OTHER", "HEADLESS")) for k in env)
    assert set(service_env(services, namespace="ns", enable_links=False)) == {
        k for k in env if k.startswith("KUBERNETES")}


def test_service_variables_come_last_and_expand() -> None:
    container = {"name": "app", "env": [{"name": "URL", "value": "https://$(KUBERNETES_SERVICE_HOST)"},
                                        {"name": "KUBERNETES_SERVICE_PORT", "value": "mine"}]}
    services = {"KUBERNETES_SERVICE_HOST": "198.19.0.1", "KUBERNETES_SERVICE_PORT": "443"}
    env, _ = resolve_env(pod(container), container, Sources(), FACTS, services=services)
    assert env == [("URL", "https://198.19.0.1"), ("KUBERNETES_SERVICE_PORT", "mine"),
                   ("KUBERNETES_SERVICE_HOST", "198.19.0.1")]
