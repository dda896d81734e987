"""The pure parts of `bench/images.py`: the order pairings run in, reading the builder's summary line,
the checks that cold builds are cold and warm ones cached, skopeo's arguments (which keep the
layer's digest so both clients move the same bytes), and the tables and ratios."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.images_build import check_cache_use, dockerfile
from bench.images_registry import skopeo_pull_argv, skopeo_push_argv
from bench.images_report import (
    BenchFailure,
    Built,
    Transfer,
    build_ratios,
    build_table,
    mbps,
    parse_built,
    registry_ratios,
    registry_table,
    rotations,
    spread,
    unpack_line,
)

SIZE = 100_000_000  # 100 MB: 1 s is 100 MB/s


def test_rotations_put_every_item_first_once_per_cycle() -> None:
    orders = rotations(["a", "b", "c"], 4)
    assert orders == [["a", "b", "c"], ["b", "c", "a"], ["c", "a", "b"], ["a", "b", "c"]]
    assert [order[0] for order in orders[:3]] == ["a", "b", "c"]
    assert rotations([], 2) == [[], []]


def test_the_builders_summary_line_is_read() -> None:
    output = ("#3 [3/3] RUN echo built > /built\n#3 DONE 0.2s\n"
              f"built sha256:{'ab' * 32} in 0.39s (0/2 steps cached)\n")
    assert parse_built(output) == Built(f"sha256:{'ab' * 32}", 0.39, 0, 2)


def test_output_without_a_summary_fails_with_the_output() -> None:
    with pytest.raises(BenchFailure, match="error: no such file"):
        parse_built("error: no such file payload\n")


def test_a_cold_build_must_run_every_step_and_a_warm_one_none() -> None:
    cold, warm = Built("sha256:x", 0.3, 0, 2), Built("sha256:x", 0.01, 2, 2)
    check_cache_use(cold, warm)
    with pytest.raises(BenchFailure, match="--no-cache build reported 1/2"):
        check_cache_use(Built("sha256:x", 0.3, 1, 2), warm)
    with pytest.raises(BenchFailure, match="ran 1 of 2 steps"):
        check_cache_use(cold, Built("sha256:x", 0.2, 1, 2))


def test_the_dockerfile_has_three_steps_from_the_offline_busybox() -> None:
    lines = dockerfile().splitlines()
    assert [line.split()[0] for line in lines] == ["FROM", "COPY", "RUN"]
    assert lines[0] == "FROM docker.io/library/busybox:latest"  # the test image, never a download


def test_skopeo_keeps_the_layer_as_it_is() -> None:
    push = skopeo_push_argv(Path("/w/image"), "127.0.0.1:5999")
    pull = skopeo_pull_argv("127.0.0.1:5999", Path("/w/pulled-1"))
    for argv in (push, pull):
        assert "--preserve-digests" in argv  # otherwise skopeo gzips the uncompressed layer on the way
    assert "--dest-oci-accept-uncompressed-layers" in pull
    assert push[-2:] == ["oci:/w/image:big", "docker://127.0.0.1:5999/klbi/big:1"]
    assert pull[-2:] == ["docker://127.0.0.1:5999/klbi/big:1", "oci:/w/pulled-1:big"]
    assert "--dest-tls-verify=false" in push and "--src-tls-verify=false" in pull  # plain HTTP on loopback


def test_spread_is_the_median_with_the_range() -> None:
    assert spread([0.3, 0.1, 0.2], scale=1000, digits=0) == "200 (100–300)"
    assert spread([1.5]) == "1.50"
    assert spread([]) == "—"


BUILD = {"cold": [0.5, 0.6, 0.7], "cold_builder": [0.2], "warm": [0.35], "warm_builder": [0.01],
         "runc": [0.05], "tar": [0.01], "tar_gzip": [0.1], "python_cli": [0.03]}


def test_build_table_and_ratios_use_this_runs_floors() -> None:
    table = build_table(BUILD)
    assert table[2] == "| `kubelite image build --no-cache` (the command, wall) | 600 (500–700) |"
    assert len(table) == 2 + len(BUILD)
    ratios = build_ratios(BUILD)
    assert ratios[0].startswith("- cold, builder: 1.3× ") and "50 ms above it" in ratios[0]  # 0.2 / (0.05 + 0.1)
    assert ratios[1].startswith("- cold, command: 3.3× ")  # 0.6 / 0.18
    assert ratios[2].startswith("- warm, command: 11.7× ") and "10 ms" in ratios[2]
    assert ratios[3].endswith("takes 58% of a cold build's wall time")


def transfers() -> list[Transfer]:
    out = []
    for seconds in (1.0, 2.0, 4.0):  # ours through ours: 50 MB/s median push, 25 MB/s pull
        out += [Transfer("kubelite", "kubelite", "push", seconds), Transfer("kubelite", "kubelite", "pull", 2 * seconds,
                                                                             unpack=seconds)]
    for seconds in (0.5, 1.0, 1.0):  # skopeo through docker-registry: 100 MB/s both ways
        out += [Transfer("skopeo", "docker-registry", "push", seconds), Transfer("skopeo", "docker-registry", "pull",
                                                                                  seconds)]
    return out


def test_mbps() -> None:
    assert mbps(SIZE, 2.0) == 50.0
    assert mbps(SIZE, 0.0) == 0.0


def test_registry_table_has_a_row_per_measured_pairing() -> None:
    table = registry_table(transfers(), SIZE)
    assert table[0].startswith("| client → registry (100.0 MB image) |")
    assert table[2] == "| kubelite → kubelite | 50 (25–100); 2.00 s | 25 (12–50); 4.00 s |"
    assert table[3] == "| skopeo → docker-registry | 100 (100–200); 1.00 s | 100 (100–200); 1.00 s |"
    assert len(table) == 4  # the pairings not measured have no row
    single = registry_table([Transfer("skopeo", "kubelite", "push", 0.5)], SIZE)
    assert single[2] == "| skopeo → kubelite | 200; 0.50 s | — |"


def test_ratios_are_ours_over_theirs_and_flag_what_is_much_slower() -> None:
    lines = registry_ratios(transfers(), SIZE)
    assert lines == ["- whole stack: kubelite client + registry vs skopeo + docker-registry: "
                     "push 0.50 (slow), pull 0.25 (slow)"]  # the other comparisons lack a side: left out
    fast = [Transfer("kubelite", "kubelite", op, 1.0) for op in ("push", "pull")]
    fast += [Transfer("skopeo", "docker-registry", op, 1.4) for op in ("push", "pull")]
    assert registry_ratios(fast, SIZE) == ["- whole stack: kubelite client + registry vs skopeo + docker-registry: "
                                           "push 1.40, pull 1.40"]


def test_the_unpack_share_of_our_pulls() -> None:
    [line] = unpack_line(transfers(), [0.5, 0.25, 1.0], SIZE)
    assert "median 2.00 s of 4.00 s" in line and "`sync -f`: 0.50 s" in line
    assert line.endswith("moves 50 MB/s (2.00 s)")
    assert unpack_line([t for t in transfers() if t.client == "skopeo"], [], SIZE) == []
