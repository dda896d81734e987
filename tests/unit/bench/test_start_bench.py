"""The pure parts of `bench/start.py`: which names and routes are the bench cluster's (the leftovers
check after `kubelite delete` must not blame a user's cluster), the app it deploys, and the tables."""

from __future__ import annotations

import argparse
import json

import pytest

from bench.start import app_manifest, dns_answered, node_counts
from bench.start_cluster import SHAPE, step_key
from bench.start_probes import Floors, Proc, route_inside
from bench.start_report import Idle, Timing, cell, memory_table, phase_table, ratio_lines, steps_table


@pytest.mark.parametrize("name", ["klb0", "klb0-n1", "klb0-n12", "klb1-4ff69469-0897", "klb3-x"])
def test_the_bench_clusters_names(name: str) -> None:
    assert SHAPE.owns(name)


@pytest.mark.parametrize("name", ["kubelite0", "kubelite1-70d0bfee", "klbn-1", "klbp-sync", "klb", "klb0-n",
                                  "klt0-n1", "xklb0", "klb0-n1x"])
def test_other_clusters_names_are_not_ours(name: str) -> None:
    assert not SHAPE.owns(name)


@pytest.mark.parametrize("route", ["198.18.224.0/24 via 198.19.133.2 dev klb0 proto 211",
                                   "unreachable 198.18.224.0/20 ", "198.19.176.0/20 dev klb0 scope link",
                                   "198.19.133.0/24 dev klb0 proto kernel scope link src 198.19.133.1"])
def test_routes_of_the_bench_cluster(route: str) -> None:
    assert route_inside(route, SHAPE.networks)


@pytest.mark.parametrize("route", ["unreachable 198.18.0.0/16 ", "198.18.0.0/24 via 198.19.128.2 dev kubelite0",
                                   "default via 10.0.0.1 dev eth0", "198.19.0.0/17 dev kubelite0 scope link"])
def test_a_users_routes_are_not_ours(route: str) -> None:
    """A user's wider cluster CIDR (198.18.0.0/16) contains ours but is not ours."""
    assert not route_inside(route, SHAPE.networks)


def test_the_app_is_a_deployment_and_a_nodeport_service_that_selects_it() -> None:
    items = json.loads(app_manifest())["items"]
    deployment, service = items
    pod = deployment["spec"]["template"]
    assert pod["spec"]["containers"][0]["imagePullPolicy"] == "IfNotPresent"  # never a public registry
    assert deployment["spec"]["selector"]["matchLabels"] == pod["metadata"]["labels"] == service["spec"]["selector"]
    assert service["spec"]["type"] == "NodePort"


@pytest.mark.parametrize(("line", "key"), [
    ("* Starting node klb-m02 (198.19.133.3, runc)", "Starting node klb-m02"),
    ("* Waiting for 3 node(s) to be Ready and the cluster DNS to answer",
     "Waiting for the node(s) to be Ready and the cluster DNS to answer"),
    ('* Done in 2.6s! kubectl is now configured to use "kubelite" (/root/.kube/config)', "Done"),
    ("* Starting the control plane (API server, controllers, scheduler, DNS)", "Starting the control plane"),
])
def test_progress_lines_are_the_same_row_for_every_cluster_size(line: str, key: str) -> None:
    assert step_key(line) == key


NSLOOKUP = "Server:\t\t198.19.176.10\nAddress:\t198.19.176.10:53\n\n"


def test_dns_answers_with_the_services_address() -> None:
    assert dns_answered(NSLOOKUP + "Name:\tkubernetes.default.svc.cluster.local\nAddress: 198.19.176.1\n\n")


@pytest.mark.parametrize("answer", ["", "** server can't find kubernetes.default.svc.cluster.local: NXDOMAIN\n",
                                    "Name:\tkubernetes.default.svc.cluster.local\nAddress: 198.19.176.12\n"])
def test_the_dns_servers_own_address_is_no_answer(answer: str) -> None:
    assert not dns_answered(NSLOOKUP + answer)  # "Address: 198.19.176.10:53" starts like the answer


def test_node_counts() -> None:
    assert node_counts("1,3") == [1, 3]
    for bad in ("", "0", "1,x", "10"):
        with pytest.raises(argparse.ArgumentTypeError):
            node_counts(bad)


def test_a_cell_is_the_median_with_the_range() -> None:
    assert cell([3.0, 1.0, 2.0]) == "2.00 (1.00–3.00)"
    assert cell([1.5]) == "1.50"
    assert cell([]) == "—"


def timing(total: float, **steps: float) -> Timing:
    return Timing(command=total - 1, api=0.5, app=total - 0.2, dns=total, steps=steps, cpu=2.0)


def test_tables_have_a_column_per_node_count() -> None:
    results = {3: [timing(5.0, Done=4.0, extra=3.5)], 1: [timing(2.0, Done=1.0), timing(4.0, Done=3.0)]}
    phases = phase_table(results)
    assert phases[0].endswith("| 1 node | 3 nodes |")
    total = next(line for line in phases if line.startswith("| DNS answering"))
    assert total == "| DNS answering in a pod (total) | 3.00 (2.00–4.00) | 5.00 |"
    assert "| goal for the total | < 3 | < 5 |" in phases
    steps = steps_table(results)
    assert steps[2:] == ["| extra | — | 3.50 |", "| Done | 2.00 (1.00–3.00) | 4.00 |"]  # the 3 nodes' order
    ratios = ratio_lines(results, Floors(runc_run=0.05, python=0.02, python_cli=0.04))
    assert "total = 60× `runc run`" in ratios[2] and "total = 100× `runc run`" in ratios[3]


def test_memory_sums_the_daemons_and_their_helpers() -> None:
    procs = [Proc(1, "server", 70 * 1024, 50 * 1024), Proc(2, "node-klb", 60 * 1024, 40 * 1024),
             Proc(3, "node-klb-m02", 60 * 1024, 40 * 1024), Proc(4, "conmon", 2 * 1024, 1024)]
    table = memory_table({3: Idle(procs, cpu_percent=1.25)}, idle=10)
    assert "| node agents | 120 / 80 (2 proc) |" in table
    assert "| conmon, runc, others | 2 / 1 (1 proc) |" in table
    assert "| **whole cluster** | 192 / 131 (4 proc) |" in table
    assert "| CPU while idle (% of one core) | 1.2 |" in table
