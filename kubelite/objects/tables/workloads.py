"""Deployment and ReplicaSet tables.

`spec.replicas` defaults to 1 as apps/v1 defaulting does. Note the two selector renderings upstream
uses: Deployments print the bare selector string (empty when unset, `<invalid>` on error),
ReplicaSets print `FormatLabelSelector` (`<none>` when empty, `<error>` on error).
"""

from __future__ import annotations

from datetime import datetime

from kubelite.objects.tables.common import (
    AGE,
    CONTAINERS_DOC,
    IMAGES_DOC,
    NAME,
    Cell,
    Column,
    Obj,
    Printer,
    age_of,
    get,
    integer,
    items,
    name_of,
)
from kubelite.objects.tables.common import container_cells as _containers
from kubelite.objects.tables.selectors import format_label_selector, selector_string

DEPLOYMENT_COLUMNS = (
    NAME,
    Column("Ready", description="Number of the pod with ready state"),
    Column("Up-to-date", description="Total number of non-terminating pods targeted by this deployment that "
                                     "have the desired template spec."),
    Column("Available", description="Total number of available non-terminating pods (ready for at least "
                                    "minReadySeconds) targeted by this deployment."),
    AGE,
    Column("Containers", priority=1, description=CONTAINERS_DOC),
    Column("Images", priority=1, description=IMAGES_DOC),
    Column("Selector", priority=1, description="Label selector for pods. Existing ReplicaSets whose pods are "
                                               "selected by this will be the ones affected by this deployment."),
)
REPLICA_SET_COLUMNS = (
    NAME,
    Column("Desired", type="integer", description="Replicas is the number of desired pods."),
    Column("Current", type="integer",
           description="Replicas is the most recently observed number of non-terminating pods."),
    Column("Ready", type="integer",
           description="The number of non-terminating pods targeted by this ReplicaSet with a Ready Condition."),
    AGE,
    Column("Containers", priority=1, description=CONTAINERS_DOC),
    Column("Images", priority=1, description=IMAGES_DOC),
    Column("Selector", priority=1,
           description="Selector is a label query over pods that should match the replica count."),
)


def _desired(obj: Obj) -> int:
    return integer(obj, "spec", "replicas", default=1)


def _deployment_selector(deployment: Obj) -> str:
    try:
        return selector_string(get(deployment, "spec", "selector"))
    except ValueError:
        return "<invalid>"


def deployment_cells(deployment: Obj, now: datetime) -> list[Cell]:
    names, images = _containers(items(deployment, "spec", "template", "spec", "containers"))
    ready = integer(deployment, "status", "readyReplicas")
    return [
        name_of(deployment), f"{ready}/{_desired(deployment)}", integer(deployment, "status", "updatedReplicas"),
        integer(deployment, "status", "availableReplicas"), age_of(deployment, now),
        names, images, _deployment_selector(deployment),
    ]


def replica_set_cells(rs: Obj, now: datetime) -> list[Cell]:
    names, images = _containers(items(rs, "spec", "template", "spec", "containers"))
    return [
        name_of(rs), _desired(rs), integer(rs, "status", "replicas"), integer(rs, "status", "readyReplicas"),
        age_of(rs, now), names, images, format_label_selector(get(rs, "spec", "selector")),
    ]


PRINTERS = {
    "deployments.apps": Printer(DEPLOYMENT_COLUMNS, deployment_cells),
    "replicasets.apps": Printer(REPLICA_SET_COLUMNS, replica_set_cells),
}
