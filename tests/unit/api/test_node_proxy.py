"""The pure decisions of the API server's proxy to node agents: container defaulting and its
messages, the node's agent endpoint, log option checks, the agent URLs."""

from __future__ import annotations

from typing import Any

import pytest
from multidict import MultiDict

from kubelite.api import proxy
from kubelite.objects.errors import BadRequest, Invalid, ServiceUnavailable


def pod(*containers: str, init: tuple[str, ...] = ()) -> dict[str, Any]:
    return {"metadata": {"name": "web", "namespace": "default", "uid": "u-1"},
            "spec": {"containers": [{"name": c} for c in containers],
                     "initContainers": [{"name": c} for c in init]}}


def test_container_defaulting_and_messages() -> None:
    assert proxy.pod_container(pod("app"), None) == "app"
    assert proxy.pod_container(pod("app", "side", init=("setup",)), "setup") == "setup"
    with pytest.raises(BadRequest, match=r"^a container name must be specified for pod web, choose one of: "
                                         r"\[app side\] or one of the init containers: \[setup\]$"):
        proxy.pod_container(pod("app", "side", init=("setup",)), "")
    with pytest.raises(BadRequest, match="^container nope is not valid for pod web$"):
        proxy.pod_container(pod("app"), "nope")


def test_node_endpoint_prefers_the_internal_ip() -> None:
    node = {"metadata": {"name": "n1"},
            "status": {"addresses": [{"type": "Hostname", "address": "n1"},
                                     {"type": "InternalIP", "address": "10.0.0.5"}],
                       "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}}}}
    assert proxy.node_endpoint(node) == ("10.0.0.5", 10250)
    node["status"]["daemonEndpoints"] = {}
    with pytest.raises(ServiceUnavailable, match="node n1 does not advertise"):
        proxy.node_endpoint(node)


def test_log_options_are_checked_as_upstream() -> None:
    proxy.check_log_options({"tailLines": "0", "limitBytes": "1", "sinceSeconds": "5"}, "web")
    with pytest.raises(Invalid) as caught:
        proxy.check_log_options({"tailLines": "-1", "limitBytes": "0"}, "web")
    assert caught.value.code == 422 and "tailLines: Invalid value: -1" in caught.value.message
    with pytest.raises(Invalid, match="at most one of `sinceTime` or `sinceSeconds`"):
        proxy.check_log_options({"sinceSeconds": "5", "sinceTime": "2026-01-01T00:00:00Z"}, "web")
    with pytest.raises(BadRequest):
        proxy.check_log_options({"limitBytes": "lots"}, "web")


def test_agent_paths() -> None:
    query = MultiDict([("container", "app"), ("follow", "true"), ("tailLines", "2"), ("junk", "x")])
    assert proxy.agent_path("log", pod("app"), "app", query) == "/containerLogs/default/web/app?follow=true&tailLines=2"
    exec_query = MultiDict([("command", "sh"), ("command", "-c"), ("command", "echo a&b"), ("stdin", "true"),
                            ("stdout", "true"), ("tty", "true")])
    assert proxy.agent_path("exec", pod("app"), "app", exec_query) == \
        "/exec/default/web/u-1/app?command=sh&command=-c&command=echo+a%26b&input=1&output=1&tty=1"
    assert proxy.agent_path("attach", pod("app"), "app", exec_query) == "/attach/default/web/u-1/app?input=1&output=1&tty=1"
    assert proxy.agent_path("portforward", pod("app"), "", MultiDict()) == "/portForward/default/web/u-1"


def test_agent_errors_pass_through_as_status() -> None:
    status = {"kind": "Status", "status": "Failure", "reason": "NotFound", "code": 404}
    assert proxy.status_from_body(404, b'{"kind": "Status", "status": "Failure", "reason": "NotFound", '
                                       b'"code": 404}') == status
    error = proxy.status_from_body(502, b"bad gateway")
    assert not isinstance(error, dict) and error.code == 500 and "bad gateway" in error.message
