"""The runc runtime's pure parts other than the OCI spec: readiness messages, the CNI network
configuration, runc error messages, records on disk, recovery decisions, image IDs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kubelite.agent.runtime.runc import RuncConfig, RuncRuntime, cni
from kubelite.agent.runtime.runc.container import ExitInfo, _runc_message
from kubelite.agent.runtime.runc.recover import UNKNOWN_EXIT, recover, settle
from kubelite.agent.runtime.runc.state import ContainerRecord, Layout, SandboxRecord
from kubelite.agent.runtime.runc.status import image_id, runtime_status
from kubelite.images.api import ImageRecord


class NoImages:
    def get(self, reference: str) -> ImageRecord:
        raise AssertionError("not used")

    def list(self) -> list[ImageRecord]:
        return []


def test_readiness_names_what_is_missing_and_how_to_install_it(tmp_path: Path) -> None:
    config = RuncConfig(root=tmp_path / "root", runc="no-such-runc", conmon="no-such-conmon",
                        cni=cni.CniSettings(bin_dir=tmp_path / "cni"))
    runtime_ready, network_ready, message = RuncRuntime(config, NoImages()).readiness()
    assert not runtime_ready and not network_ready
    assert "no-such-runc, no-such-conmon not found" in message
    assert "CNI plugins bridge, host-local, loopback, portmap not found" in message
    assert message.endswith("(install: apt-get install runc conmon containernetworking-plugins)")


def test_conflist_from_the_pod_cidr() -> None:
    net = cni.conflist(cni.CniSettings(network="kubelite", bridge="cni0", mtu=1450), subnet="198.18.3.0/24",
                       data_dir=Path("/r/cni/ipam"))
    bridge, portmap = net["plugins"]
    assert net["cniVersion"] == "1.0.0" and net["name"] == "kubelite"
    assert bridge["type"] == "bridge" and bridge["bridge"] == "cni0" and bridge["isGateway"] and bridge["hairpinMode"]
    assert bridge["ipMasq"] is False and bridge["mtu"] == 1450
    assert bridge["ipam"] == {"type": "host-local", "ranges": [[{"subnet": "198.18.3.0/24"}]],
                              "routes": [{"dst": "0.0.0.0/0"}], "dataDir": "/r/cni/ipam"}
    assert portmap == {"type": "portmap", "capabilities": {"portMappings": True}, "snat": True}


def test_port_mappings_of_host_ports() -> None:
    pod: dict[str, Any] = {"spec": {"containers": [
        {"name": "a", "ports": [{"containerPort": 80, "hostPort": 8080}, {"containerPort": 81}]},
        {"name": "b", "ports": [{"containerPort": 53, "hostPort": 5353, "protocol": "UDP", "hostIP": "127.0.0.1"}]}]}}
    assert cni.port_mappings(pod) == [
        {"hostPort": 8080, "containerPort": 80, "protocol": "tcp"},
        {"hostPort": 5353, "containerPort": 53, "protocol": "udp", "hostIP": "127.0.0.1"}]


def test_plugin_config_passes_only_wanted_capabilities_and_the_previous_result() -> None:
    net = cni.conflist(cni.CniSettings(), subnet="198.18.3.0/24", data_dir=Path("/d"))
    runtime_config = {"portMappings": [{"hostPort": 1, "containerPort": 2, "protocol": "tcp"}], "bandwidth": {}}
    bridge = cni.plugin_config(net, net["plugins"][0], prev_result=None, runtime_config=runtime_config)
    assert "runtimeConfig" not in bridge and "prevResult" not in bridge and bridge["name"] == "kubelite"
    portmap = cni.plugin_config(net, net["plugins"][1], prev_result={"ips": []}, runtime_config=runtime_config)
    assert portmap["runtimeConfig"] == {"portMappings": runtime_config["portMappings"]}
    assert portmap["prevResult"] == {"ips": []}


def test_result_ips() -> None:
    result = {"ips": [{"interface": 2, "address": "198.18.3.2/24", "gateway": "198.18.3.1"}]}
    assert cni.result_ips(result) == ["198.18.3.2"] and cni.result_ips(None) == []


def test_runc_error_lines_are_reduced_to_their_message() -> None:
    text = ('time="2026-11-25T22:44:29Z" level=error msg="runc create failed: unable to start container process: '
            'exec: \\"nope\\": executable file not found in $PATH"\n')
    assert _runc_message(text) == ('runc create failed: unable to start container process: exec: "nope": '
                                   'executable file not found in $PATH')
    assert _runc_message("plain failure") == "plain failure"


class StubRunc:
    def __init__(self, *, exit_info: ExitInfo | None = None, conmon: bool = False, process: bool = False) -> None:
        self._exit, self._conmon, self._process = exit_info, conmon, process

    def exit_info(self, cid: str) -> ExitInfo | None:
        return self._exit

    def conmon_pid(self, cid: str) -> int | None:
        return 100 if self._conmon else None

    def container_pid(self, cid: str) -> int | None:
        return 101 if self._process else None


def running() -> ContainerRecord:
    return ContainerRecord(name="c", id="a" * 64, init=False, image="i", image_id="i@sha256:x", state="running",
                           started_at="2026-01-01T00:00:00Z")


def test_settle_after_a_restart() -> None:
    now = 1_800_000_000.0
    c = running()
    assert settle(c, StubRunc(conmon=True), now=now, cgroup_dirs=[]) == "running"  # type: ignore[arg-type]
    assert settle(c, StubRunc(process=True), now=now, cgroup_dirs=[]) == "running"  # type: ignore[arg-type]
    exited = ExitInfo(code=137, oom=True, at=1_799_999_990.0)
    assert settle(c, StubRunc(exit_info=exited, conmon=True), now=now, cgroup_dirs=[]) == "exited"  # type: ignore[arg-type]
    assert (c.exit_code, c.reason, c.finished_at) == (137, "OOMKilled", "2027-01-15T07:59:50Z")
    lost = running()
    assert settle(lost, StubRunc(), now=now, cgroup_dirs=[]) == "exited"  # type: ignore[arg-type]
    assert (lost.exit_code, lost.reason) == (UNKNOWN_EXIT, "Unknown")
    completed = running()
    settle(completed, StubRunc(exit_info=ExitInfo(0, False, now)), now=now, cgroup_dirs=[])  # type: ignore[arg-type]
    assert completed.reason == "Completed"


def test_records_round_trip_and_recovery_settles_them(tmp_path: Path) -> None:
    layout = Layout.at(tmp_path)
    layout.ensure()
    rec = SandboxRecord(uid="u1", name="p", namespace="ns", id="s" * 64, created_at="2026-01-01T00:00:00Z",
                        ready=True, ips=["198.18.3.2"], containers={"c": running()})
    layout.save(rec)
    (tmp_path / "sandboxes" / "torn.json").write_text("{")
    found = recover(layout, StubRunc(), now=1_800_000_000.0)  # type: ignore[arg-type]
    assert list(found.sandboxes) == ["u1"] and found.running == [] and found.to_clean == [("u1", "c")]
    again = layout.load_all()[0]
    assert again.containers["c"].state == "exited" and again.ips == ["198.18.3.2"]
    status = runtime_status(again)
    assert status.sandbox.ips == ("198.18.3.2",) and status.containers["c"].exit_code == UNKNOWN_EXIT


def test_image_id_is_the_repository_digest() -> None:
    record = ImageRecord("docker.io/library/busybox:latest", "sha256:c", "sha256:d", {}, (), 0)
    assert image_id(record) == "docker.io/library/busybox@sha256:d"
    ported = ImageRecord("localhost:5000/team/app:1.0", "sha256:c", "sha256:e", {}, (), 0)
    assert image_id(ported) == "localhost:5000/team/app@sha256:e"
