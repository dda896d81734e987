"""Server-side printing: the `meta.k8s.io/v1` Table responses `kubectl get` renders verbatim.

kubectl asks for `Accept: application/json;as=Table;v=v1;g=meta.k8s.io` and prints exactly the cells
the server returns, so the columns and cell values here follow kube-apiserver's printers
(`pkg/printers/internalversion/printers.go`) and apimachinery's `HumanDuration` to the character.

Layout: `table` assembles responses and dispatches by group-resource; one module per area holds
column specs and small cell functions (`pods`, `nodes`, `network`, `events`, `workloads`, `basic`);
`duration`, `selectors` and `common` are the shared helpers. Everything is pure: no I/O, no clock
reads except when `now` is not given.
"""

from kubelite.objects.tables.duration import human_duration
from kubelite.objects.tables.table import (
    printer_for,
    to_partial_object_metadata,
    to_partial_object_metadata_list,
    to_table,
)

__all__ = [
    "human_duration",
    "printer_for",
    "to_partial_object_metadata",
    "to_partial_object_metadata_list",
    "to_table",
]
