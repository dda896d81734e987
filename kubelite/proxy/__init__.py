"""The Service proxy (kube-proxy's job) that runs in each node agent.

- `serviceports.py`: Services + EndpointSlices → `ServicePort`s with their usable endpoints (pure);
- `model.py`: ServicePorts + the node's context → the desired nftables ruleset as data (pure);
- `nft.py`: that ruleset as `nft -f` scripts, whole or as a difference (pure), and running nft;
- `desired.py`: the whole desired ruleset kept current one Service fragment at a time, handing
  back only the entries a change touches (pure);
- `backends.py`: the backend contract and the nftables backend (per-Service fragments, incremental
  transactions); `userspace.py`: the asyncio fallback when nftables cannot be used;
- `proxier.py`: the component: informers, dirty tracking, debounced syncs, backend choice.
"""

from kubelite.proxy.proxier import Proxier

__all__ = ["Proxier"]
