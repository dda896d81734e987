"""The pure decisions of a host node: preflight messages, InternalIP choice, capacity; node
credentials and the agent's credential/TLS resolution; the proxy's close-code relay."""

from __future__ import annotations

import argparse
import base64
from pathlib import Path

import pytest
import yaml
from cryptography import x509
from cryptography.x509.oid import NameOID

from kubelite.agent.hostnode import Capacity, NodePaths, capacity, choose_node_ip, preflight
from kubelite.api.proxy import relayed_close_code
from kubelite.cli import agent as agent_cli
from kubelite.cli.agent_runc import DataDirBusy, lock_data_dir
from kubelite.cluster.nodecreds import write_node_kubeconfig, write_serving_files
from kubelite.cluster.pki import Pki, ensure_pki

LINKS = [
    {"ifname": "lo", "addr_info": [{"family": "inet", "local": "127.0.0.1", "scope": "host"}]},
    {"ifname": "eth0", "addr_info": [{"family": "inet", "local": "192.0.2.2", "scope": "global"}]},
    {"ifname": "cni0", "addr_info": [{"family": "inet", "local": "198.18.0.1", "scope": "global"}]},
]


# ----- preflight -----------------------------------------------------------------------------------

def test_preflight_names_what_to_install() -> None:
    problems = preflight(euid=1000, missing_tools=["conmon", "runc", "unshare"], missing_cni=["bridge", "portmap"],
                         cni_dir=Path("/usr/lib/cni"))
    assert len(problems) == 3
    assert "root" in problems[0] and "--runtime fake" in problems[0]
    assert problems[1] == "conmon, runc, unshare not found: apt-get install -y conmon runc util-linux"
    custom = preflight(euid=0, missing_tools=["/opt/bin/runc"], missing_cni=[], cni_dir=Path("/usr/lib/cni"))
    assert custom == ["/opt/bin/runc not found: apt-get install -y runc"]
    assert "bridge, portmap not found in /usr/lib/cni" in problems[2]
    assert "apt-get install -y containernetworking-plugins" in problems[2] and "--cni-bin-dir" in problems[2]


def test_preflight_passes_a_ready_host() -> None:
    assert preflight(euid=0, missing_tools=[], missing_cni=[], cni_dir=Path("/usr/lib/cni")) == []


# ----- the node's address ------------------------------------------------------------------------------

def test_node_ip_is_the_source_towards_the_api_server() -> None:
    route = [{"dst": "10.0.0.1", "dev": "eth1", "prefsrc": "10.0.0.7"}]
    assert choose_node_ip(route_to_api=route, default_routes=[], links=LINKS) == "10.0.0.7"


def test_a_loopback_api_server_falls_back_to_the_default_route() -> None:
    route = [{"type": "local", "dst": "127.0.0.1", "dev": "lo", "prefsrc": "127.0.0.1"}]
    default = [{"dst": "default", "gateway": "192.0.2.1", "dev": "eth0"}]
    assert choose_node_ip(route_to_api=route, default_routes=default, links=LINKS) == "192.0.2.2"


def test_without_a_default_route_any_global_address_but_the_pods_bridge() -> None:
    assert choose_node_ip(route_to_api=[], default_routes=[], links=LINKS[::-1], skip_links=["cni0"]) == "192.0.2.2"
    assert choose_node_ip(route_to_api=[], default_routes=[], links=LINKS[:1]) is None


# ----- capacity and layout -------------------------------------------------------------------------------

def test_capacity_as_the_kubelet_reports_it() -> None:
    meminfo = "MemTotal:       24608360 kB\nMemFree:        1 kB\n"
    assert capacity(cpus=2, meminfo=meminfo, disk_bytes=100 * 1024**3) == \
        Capacity("2", "24608360Ki", f"{100 * 1024**2}Ki")


def test_node_paths_share_the_image_store_with_the_image_cli(tmp_path: Path) -> None:
    paths = NodePaths(tmp_path)
    assert paths.images == tmp_path / "images"
    assert {paths.runtime, paths.kubelet, paths.logs, paths.kubeconfig} == {
        tmp_path / "runtime", tmp_path / "kubelet", tmp_path / "logs", tmp_path / "kubelet.kubeconfig"}


def test_one_agent_per_data_dir(tmp_path: Path) -> None:
    held = lock_data_dir(tmp_path)
    try:
        with pytest.raises(DataDirBusy, match="another kubelite agent"):
            lock_data_dir(tmp_path)
    finally:
        held.close()
    lock_data_dir(tmp_path).close()


# ----- credentials -----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return ensure_pki(tmp_path_factory.mktemp("pki"), ip_sans=["127.0.0.1"], dns_sans=[])


def _subject(cert_pem: bytes) -> tuple[str, list[str]]:
    cert = x509.load_pem_x509_certificate(cert_pem)
    return (str(cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value),
            [str(a.value) for a in cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)])


def test_node_kubeconfig_carries_the_nodes_identity(pki: Pki, tmp_path: Path) -> None:
    path = write_node_kubeconfig(pki, node_name="n1", server="https://10.0.0.1:6443", data_dir=tmp_path)
    assert path == tmp_path / "kubelet.kubeconfig" and path.stat().st_mode & 0o777 == 0o600
    config = yaml.safe_load(path.read_text())
    assert config["clusters"][0]["cluster"]["server"] == "https://10.0.0.1:6443"
    user = config["users"][0]
    assert user["name"] == "system:node:n1"
    assert _subject(base64.b64decode(user["user"]["client-certificate-data"])) == ("system:node:n1", ["system:nodes"])


def test_serving_files_for_a_remote_node(pki: Pki, tmp_path: Path) -> None:
    files = write_serving_files(pki, node_name="n2", ips=["10.0.0.2"], directory=tmp_path / "n2")
    cert = x509.load_pem_x509_certificate(files.cert.read_bytes())
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert [str(ip) for ip in sans.get_values_for_type(x509.IPAddress)] == ["10.0.0.2"]
    assert files.key.stat().st_mode & 0o777 == 0o600 and files.client_ca.read_bytes() == pki.ca_pem()


def _args(tmp_path: Path, *argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    agent_cli.add_arguments(parser)
    return parser.parse_args(["--data-dir", str(tmp_path), *argv])


def test_the_agent_mints_its_kubeconfig_from_the_pki_once(pki: Pki, tmp_path: Path) -> None:
    args = _args(tmp_path, "--name", "n3", "--server", "https://127.0.0.1:6443", "--pki-dir", str(pki.directory))
    paths = NodePaths(tmp_path)
    agent_cli.node_connection(args, paths)
    minted = paths.kubeconfig.read_text()
    agent_cli.node_connection(args, paths)
    assert paths.kubeconfig.read_text() == minted  # re-used, not re-issued


def test_the_agent_without_credentials_says_what_to_give(tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match="--pki-dir"):
        agent_cli.node_connection(_args(tmp_path), NodePaths(tmp_path))


def test_tls_material_comes_from_files_or_the_pki(pki: Pki, tmp_path: Path) -> None:
    assert agent_cli.tls_source(_args(tmp_path)) is None
    with pytest.raises(SystemExit, match="no ca.key"):
        agent_cli.tls_source(_args(tmp_path, "--pki-dir", str(tmp_path / "elsewhere")))
    assert agent_cli.tls_source(_args(tmp_path, "--pki-dir", str(pki.directory))) is not None
    with pytest.raises(SystemExit, match="go together"):
        agent_cli.tls_source(_args(tmp_path, "--tls-cert-file", "x.crt"))


def test_runc_is_the_default_runtime_and_resources_are_measured(tmp_path: Path) -> None:
    args = _args(tmp_path)
    assert (args.runtime, args.cpu, args.memory, args.streaming_port) == ("runc", None, None, 10250)


# ----- the API server's WebSocket relay --------------------------------------------------------------

def test_relay_forwards_the_code_of_the_close_frame_never_a_reserved_one() -> None:
    assert relayed_close_code(1000) == 1000
    assert relayed_close_code(4001) == 4001
    assert [relayed_close_code(c) for c in (None, 1005, 1006, 1015)] == [1011] * 4
