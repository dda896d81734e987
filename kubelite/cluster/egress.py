"""What of the cluster's traffic may leave this machine: one nftables table per cluster on the host.

Nodes and pods use addresses of the cluster's own ranges (198.18.0.0/15 by default), which no
network outside this machine routes back. So, as Docker and kind do for their containers, traffic
from the node network or the pods to any address outside the cluster's ranges is masqueraded
behind the host's own address: image pulls from a public registry and pods' outbound connections
work on a machine that has a way out. With `kubelite start --offline` the same traffic is dropped
instead, so nothing of the cluster ever leaves the machine (and the host's forwarding of other
traffic is not touched either way).

Traffic between the cluster's ranges (node to node over the bridge, pods to Services, pods to the
host's DNS and registry) matches neither rule. The table is replaced whole in one `nft -f`
transaction and deleted by `kubelite delete`.
"""

from __future__ import annotations

import subprocess
from collections.abc import Sequence


def table_name(cluster: str) -> str:
    return f"{cluster}-egress"


def ruleset(cluster: str, *, sources: Sequence[str], cluster_ranges: Sequence[str], offline: bool) -> str:
    """The `nft -f` script that (re)creates the cluster's egress table."""
    table = table_name(cluster)
    src = ", ".join(sources)
    inside = ", ".join(cluster_ranges)
    leaving = f"ip saddr {{ {src} }} ip daddr != {{ {inside} }}"
    if offline:
        chain = (f"  chain forward {{ type filter hook forward priority 0; policy accept;\n"
                 f"    {leaving} counter drop comment \"offline: nothing of the cluster leaves\"\n  }}\n")
    else:
        chain = (f"  chain postrouting {{ type nat hook postrouting priority srcnat + 10; policy accept;\n"
                 f"    {leaving} counter masquerade\n  }}\n")
    return f"table ip {table}\ndelete table ip {table}\ntable ip {table} {{\n{chain}}}\n"


def apply(script: str) -> None:
    result = subprocess.run(["nft", "-f", "-"], input=script, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"nft -f failed: {result.stderr.strip()}")
