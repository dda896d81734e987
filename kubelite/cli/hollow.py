"""`kubelite hollow-nodes`: many hollow nodes (kubelets with the fake runtime) in one process.

    kubelite hollow-nodes --count 1000 --kubeconfig ~/.local/share/kubelite/admin.kubeconfig

They register, turn Ready, heartbeat and run pods bound to them (instantly, without processes),
so schedulers and controllers can be exercised at scale on one machine.
"""

from __future__ import annotations

import argparse
from typing import Any

from kubelite.cli.agent import add_connection_arguments, add_node_arguments


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--count", type=int, required=True, help="number of hollow nodes")
    parser.add_argument("--prefix", default="hollow-", help="node name prefix (default: %(default)s)")
    parser.add_argument("--first-index", type=int, default=0,
                        help="number of the first node, so several processes do not collide (default: 0)")
    add_connection_arguments(parser)
    add_node_arguments(parser)


def run(args: argparse.Namespace) -> int:
    import logging
    import time

    from kubelite.agent.hollow import HollowNodes
    from kubelite.cli.agent import connection, kubelet_config, run_until_signalled
    from kubelite.client import Client

    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    log = logging.getLogger("kubelite.agent.hollow")
    state: dict[str, Any] = {}

    async def start() -> None:
        client = state["client"] = Client(connection(args), user_agent="kubelet/hollow", max_connections=64)
        nodes = state["nodes"] = HollowNodes(client, args.count, prefix=args.prefix, first_index=args.first_index,
                                             config=kubelet_config(args), cpu=args.cpu, memory=args.memory,
                                             pods=args.max_pods)
        began = time.monotonic()
        await nodes.start()
        log.info("%d hollow nodes registered in %.1fs", args.count, time.monotonic() - began)

    async def stop() -> None:
        if "nodes" in state:
            await state["nodes"].stop()
        if "client" in state:
            await state["client"].close()

    run_until_signalled(start, stop)
    return 0
