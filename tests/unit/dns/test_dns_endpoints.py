"""kube-dns endpoints: only addresses pods can reach, one slice of the server's own."""

from __future__ import annotations

from kubelite.dns.endpoints import endpoint_slice, endpoints_object, routable


def test_loopback_and_unspecified_listeners_are_not_endpoints() -> None:
    listen = [("127.0.0.1", 10053), ("0.0.0.0", 53), ("198.19.128.1", 10053), ("::1", 53), ("name", 53)]
    assert routable(listen) == [("198.19.128.1", 10053)]


def test_objects_name_the_service_and_its_ports() -> None:
    slice_ = endpoint_slice([("198.19.128.1", 10053)], owner="vm")
    assert slice_["metadata"]["name"] == "kube-dns-vm"
    assert slice_["metadata"]["labels"]["kubernetes.io/service-name"] == "kube-dns"
    assert slice_["endpoints"][0] == {"addresses": ["198.19.128.1"],
                                      "conditions": {"ready": True, "serving": True, "terminating": False}}
    assert [(p["name"], p["port"], p["protocol"]) for p in slice_["ports"]] == [("dns", 10053, "UDP"),
                                                                              ("dns-tcp", 10053, "TCP")]
    endpoints = endpoints_object([("198.19.128.1", 10053)])
    assert endpoints["subsets"][0]["addresses"] == [{"ip": "198.19.128.1"}]
