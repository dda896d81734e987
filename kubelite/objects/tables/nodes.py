"""The node table: STATUS from the Ready condition plus cordoning, ROLES from role labels.

Since 1.36 (kubernetes#132402) the node's architecture is appended to the KERNEL-VERSION cell,
`6.8.0-51-generic (arm64)`; there is no separate ARCH column.
"""

from __future__ import annotations

from datetime import datetime

from kubelite.objects.tables.common import (
    AGE,
    NAME,
    NONE,
    Cell,
    Column,
    Obj,
    Printer,
    age_of,
    get,
    items,
    mapping,
    name_of,
    text,
)
from kubelite.objects.tables.duration import UNKNOWN

_ADDRESSES_DOC = "List of addresses reachable to the node. Queried from cloud provider, if available."
COLUMNS = (
    NAME,
    Column("Status", description="The status of the node"),
    Column("Roles", description="The roles of the node"),
    AGE,
    Column("Version", description="Kubelet Version reported by the node."),
    Column("Internal-IP", priority=1, description=_ADDRESSES_DOC),
    Column("External-IP", priority=1, description=_ADDRESSES_DOC),
    Column("OS-Image", priority=1,
           description="OS Image reported by the node from /etc/os-release (e.g. Debian GNU/Linux 7 (wheezy))."),
    Column("Kernel-Version", priority=1,
           description="Kernel Version reported by the node from 'uname -r' (e.g. 3.16.0-0.bpo.4-amd64)."),
    Column("Container-Runtime", priority=1,
           description="ContainerRuntime Version reported by the node through runtime remote API "
                       "(e.g. containerd://1.4.2)."),
)

_ROLE_PREFIX = "node-role.kubernetes.io/"
_ROLE_LABEL = "kubernetes.io/role"


def _ready_word(condition: Obj) -> str:
    return "Ready" if text(condition, "status") == "True" else "NotReady"


def _status(node: Obj) -> str:
    # Upstream keeps the last condition of each type, and only looks at Ready.
    ready = [c for c in items(node, "status", "conditions") if text(c, "type") == "Ready"]
    parts = [_ready_word(ready[-1])] if ready else ["Unknown"]
    if get(node, "spec", "unschedulable") is True:
        parts.append("SchedulingDisabled")
    return ",".join(parts)


def node_roles(node: Obj) -> list[str]:
    """Sorted, de-duplicated roles from `node-role.kubernetes.io/<role>` and `kubernetes.io/role`."""
    roles: set[str] = set()
    for key, value in mapping(node, "metadata", "labels").items():
        if key.startswith(_ROLE_PREFIX) and (role := key[len(_ROLE_PREFIX):]):
            roles.add(role)
        elif key == _ROLE_LABEL and isinstance(value, str) and value:
            roles.add(value)
    return sorted(roles)


def _address(node: Obj, kind: str) -> str:
    found = next((a for a in items(node, "status", "addresses") if text(a, "type") == kind), None)
    return text(found, "address") if found is not None else NONE


def _kernel(info: Obj) -> str:
    kernel = text(info, "kernelVersion") or UNKNOWN
    arch = text(info, "architecture")
    return f"{kernel} ({arch})" if arch else kernel


def node_cells(node: Obj, now: datetime) -> list[Cell]:
    info = mapping(node, "status", "nodeInfo")
    return [
        name_of(node), _status(node), ",".join(node_roles(node)) or NONE, age_of(node, now),
        text(info, "kubeletVersion"), _address(node, "InternalIP"), _address(node, "ExternalIP"),
        text(info, "osImage") or UNKNOWN, _kernel(info), text(info, "containerRuntimeVersion") or UNKNOWN,
    ]


PRINTERS = {"nodes": Printer(COLUMNS, node_cells)}
