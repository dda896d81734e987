"""The cluster's egress table as text: masquerade out by default, drop everything out offline."""

from __future__ import annotations

from kubelite.cluster.egress import ruleset

SOURCES = ["198.19.128.0/24", "198.18.0.0/16"]
RANGES = [*SOURCES, "198.19.0.0/17", "198.19.200.0/24"]


def test_online_masquerades_what_leaves_the_cluster_ranges() -> None:
    script = ruleset("kubelite", sources=SOURCES, cluster_ranges=RANGES, offline=False)
    assert script.startswith("table ip kubelite-egress\ndelete table ip kubelite-egress\n")  # one transaction
    assert ("ip saddr { 198.19.128.0/24, 198.18.0.0/16 } ip daddr != { 198.19.128.0/24, 198.18.0.0/16, "
            "198.19.0.0/17, 198.19.200.0/24 } counter masquerade") in script
    assert "drop" not in script


def test_offline_drops_what_would_leave_and_masquerades_nothing() -> None:
    script = ruleset("klt", sources=SOURCES, cluster_ranges=RANGES, offline=True)
    assert "type filter hook forward" in script and "counter drop" in script and "masquerade" not in script
