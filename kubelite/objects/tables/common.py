"""Shared building blocks of the printers: column specs, the printer record, safe field access.

Objects arrive as decoded JSON (`dict`), possibly incomplete, so every accessor tolerates missing or
mistyped fields and returns the zero value upstream's Go structs would hold in that case.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from kubelite.objects.tables.duration import since

Cell = str | int
Obj = Mapping[str, Any]
CellsFn = Callable[[Obj, datetime], list[Cell]]
ConditionsFn = Callable[[Obj], list[dict[str, str]]]

NONE = "<none>"

# metav1.ObjectMeta field docs, which upstream uses for every Name and Age column.
NAME_DOC = (
    "Name must be unique within a namespace. Is required when creating resources, although some "
    "resources may allow a client to request the generation of an appropriate name automatically. "
    "Name is primarily intended for creation idempotence and configuration definition. Cannot be "
    "updated. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names"
)
CREATION_TIMESTAMP_DOC = (
    "CreationTimestamp is a timestamp representing the server time when this object was created. It "
    "is not guaranteed to be set in happens-before order across separate operations. Clients may not "
    "set this value. It is represented in RFC3339 form and is in UTC.\n\nPopulated by the system. "
    "Read-only. Null for lists. More info: "
    "https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata"
)
CONTAINERS_DOC = "Names of each container in the template."
IMAGES_DOC = "Images referenced by each container in the template."


@dataclass(frozen=True)
class Column:
    """One `TableColumnDefinition`; priority 1 columns are the ones kubectl shows only with -o wide."""

    name: str
    type: str = "string"
    description: str = ""
    priority: int = 0
    format: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "type": self.type, "format": self.format,
                "description": self.description, "priority": self.priority}


NAME = Column("Name", format="name", description=NAME_DOC)
AGE = Column("Age", description=CREATION_TIMESTAMP_DOC)


@dataclass(frozen=True)
class Printer:
    """Columns of a kind plus the function computing one row's cells (all columns, wide included)."""

    columns: tuple[Column, ...]
    cells: CellsFn
    conditions: ConditionsFn | None = None


def get(obj: Any, *path: str) -> Any:
    """The value at `path` inside nested mappings, or None when any step is missing."""
    current = obj
    for key in path:
        if not isinstance(current, Mapping):
            return None
        current = current.get(key)
    return current


def mapping(obj: Any, *path: str) -> Obj:
    value = get(obj, *path)
    return value if isinstance(value, Mapping) else {}


def text(obj: Any, *path: str) -> str:
    value = get(obj, *path)
    return value if isinstance(value, str) else ""


def integer(obj: Any, *path: str, default: int = 0) -> int:
    value = get(obj, *path)
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def items(obj: Any, *path: str) -> list[Obj]:
    value = get(obj, *path)
    return [item for item in value if isinstance(item, Mapping)] if isinstance(value, list) else []


def strings(obj: Any, *path: str) -> list[str]:
    value = get(obj, *path)
    return [item for item in value if isinstance(item, str)] if isinstance(value, list) else []


def present(obj: Any, *path: str) -> bool:
    """Whether a pointer-typed struct field is set (a Go `!= nil`): the value is a mapping."""
    return isinstance(get(obj, *path), Mapping)


def name_of(obj: Obj) -> str:
    return text(obj, "metadata", "name")


def age_of(obj: Obj, now: datetime) -> str:
    return since(get(obj, "metadata", "creationTimestamp"), now)


def count(obj: Any, *path: str) -> int:
    """Length of a list or map field (Go's `len` of a nil slice/map is 0)."""
    value = get(obj, *path)
    return len(value) if isinstance(value, list | Mapping) else 0


def container_cells(containers: list[Obj]) -> tuple[str, str]:
    """Upstream `layoutContainerCells`: comma-joined names and images."""
    names = ",".join(text(c, "name") for c in containers)
    images = ",".join(text(c, "image") for c in containers)
    return names, images
