"""The node agent (kubelet): registers a Node, heartbeats through its Lease and status, and runs
the pods bound to it through a container runtime.

- `kubelet.py`: one node (registration, lease, node status); `pods.py` + `podworkers.py`: its pods;
- `nodestatus.py`, `podstatus.py`: the statuses it reports, pure;
- `runtime/`: the runtime interface and the fake (hollow) runtime; `ipam.py`: pod addresses;
- `host.py`: many kubelets on one client (shared watches, heartbeat wheel); `hollow.py`: hollow nodes.
"""
