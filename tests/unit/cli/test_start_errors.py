"""`kubelite start`'s errors say what to do: root, missing tools, ports in use, changed settings."""

from __future__ import annotations

import argparse
import socket
from dataclasses import replace
from pathlib import Path

import pytest

from kubelite.cli import start
from kubelite.cluster.local import ClusterSpec, LocalCluster, save_spec


def args(tmp_path: Path, **given: object) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    start.add_arguments(parser)
    namespace = parser.parse_args(["--data-dir", str(tmp_path)])
    for key, value in given.items():
        setattr(namespace, key, value)
    return namespace


def test_not_root_names_what_needs_root_and_the_fake_runtime(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(start.os, "geteuid", lambda: 1000)
    problems = start._preflight(ClusterSpec(runtime="runc"))
    assert problems[0].startswith("runc nodes need root (network namespaces, mounts, cgroups, nftables)")
    assert "kubelite start --runtime fake" in problems[0]
    assert start._preflight(ClusterSpec(runtime="fake")) == []


def test_missing_tools_come_with_the_install_command(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(start.shutil, "which", lambda tool: None if tool == "nsenter" else f"/usr/bin/{tool}")
    problems = start._preflight(ClusterSpec(runtime="runc"))
    assert "nsenter not found: apt-get install -y util-linux" in problems


def test_a_port_in_use_is_named_with_the_flag_that_moves_it(tmp_path: Path) -> None:
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        port = held.getsockname()[1]
        cluster = LocalCluster(tmp_path, ClusterSpec(port=port, dns_port=0, registry_port=0))
        message = start._busy_ports(cluster)
    assert message.startswith(f"port {port} (the API server) is in use by another program")
    assert "--port" in message


def test_a_created_cluster_keeps_its_shape(tmp_path: Path) -> None:
    save_spec(tmp_path, replace(ClusterSpec(), port=7443))
    spec = start._spec(args(tmp_path, port=8443))
    assert isinstance(spec, str) and "--port (was 7443)" in spec and "kubelite delete" in spec
    kept = start._spec(args(tmp_path, nodes=3))
    assert not isinstance(kept, str) and kept.port == 7443 and list(kept.nodes) == ["kubelite", "kubelite-m02",
                                                                                     "kubelite-m03"]


def test_nodes_keep_their_indexes_when_the_count_changes() -> None:
    spec = ClusterSpec().with_nodes(3)
    assert spec.nodes == {"kubelite": 1, "kubelite-m02": 2, "kubelite-m03": 3}
    smaller, name = spec.without_node("kubelite-m02").with_node_added()
    assert name == "kubelite-m02" and smaller.nodes["kubelite-m02"] == 2
    assert ClusterSpec().with_nodes(3).with_nodes(1).nodes == {"kubelite": 1}
