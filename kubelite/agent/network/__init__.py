"""Pod network across nodes: routes from this network namespace to every other node's pod CIDR,
kept in step with the Node objects.

- `routes.py`: Node objects + this namespace's addresses → host-gw routes (`podCIDR via
  InternalIP`), and the difference from what the kernel holds as `ip -batch` lines (pure);
- `vxlan.py`: the VXLAN mode (flannel's vxlan backend): the device, routes, neighbours, fdb (pure);
- `apply.py`: reads with `ip -j`, writes with `ip -batch` / `bridge -batch`; our routes carry
  `proto 211` so exactly ours are listed, replaced and removed;
- `component.py`: `NodeRoutes`, the component (Node informer, debounced syncs, periodic resync).
"""

from kubelite.agent.network.component import MODES, NodeRoutes
from kubelite.agent.network.routes import PROTO
from kubelite.agent.network.vxlan import VTEP_ANNOTATION, VxlanConfig

__all__ = ["MODES", "PROTO", "VTEP_ANNOTATION", "NodeRoutes", "VxlanConfig"]
