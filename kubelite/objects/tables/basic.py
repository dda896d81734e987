"""Tables for the simple kinds (namespaces, config maps, secrets, service accounts, leases) and the
fallback Name/Age table for kinds without a printer of their own.

Namespace phase and Secret type fall back to the values upstream's create strategy and defaulting
always store (`Active`, `Opaque`). ServiceAccounts print Name/Age only: the SECRETS count column was
dropped upstream in 1.35 (kubernetes#117160).
"""

from __future__ import annotations

from datetime import datetime

from kubelite.objects.tables.common import (
    AGE,
    NAME,
    Cell,
    Column,
    Obj,
    Printer,
    age_of,
    count,
    name_of,
    text,
)

NAMESPACE_COLUMNS = (NAME, Column("Status", description="The status of the namespace"), AGE)
CONFIG_MAP_COLUMNS = (NAME, Column("Data", description="Data contains the configuration data."), AGE)
SECRET_COLUMNS = (
    NAME,
    Column("Type", description="Used to facilitate programmatic handling of secret data."),
    Column("Data", description="Data contains the secret data."),
    AGE,
)
LEASE_COLUMNS = (
    NAME,
    Column("Holder", description="holderIdentity contains the identity of the holder of a current lease."),
    AGE,
)
DEFAULT_COLUMNS = (NAME, AGE)


def namespace_cells(ns: Obj, now: datetime) -> list[Cell]:
    return [name_of(ns), text(ns, "status", "phase") or "Active", age_of(ns, now)]


def config_map_cells(cm: Obj, now: datetime) -> list[Cell]:
    return [name_of(cm), count(cm, "data") + count(cm, "binaryData"), age_of(cm, now)]


def secret_cells(secret: Obj, now: datetime) -> list[Cell]:
    return [name_of(secret), text(secret, "type") or "Opaque", count(secret, "data"), age_of(secret, now)]


def lease_cells(lease: Obj, now: datetime) -> list[Cell]:
    return [name_of(lease), text(lease, "spec", "holderIdentity"), age_of(lease, now)]


def default_cells(obj: Obj, now: datetime) -> list[Cell]:
    return [name_of(obj), age_of(obj, now)]


DEFAULT = Printer(DEFAULT_COLUMNS, default_cells)

PRINTERS = {
    "namespaces": Printer(NAMESPACE_COLUMNS, namespace_cells),
    "configmaps": Printer(CONFIG_MAP_COLUMNS, config_map_cells),
    "secrets": Printer(SECRET_COLUMNS, secret_cells),
    "serviceaccounts": Printer(DEFAULT_COLUMNS, default_cells),
    "leases.coordination.k8s.io": Printer(LEASE_COLUMNS, lease_cells),
}
