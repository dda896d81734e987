"""Assembling `meta.k8s.io/v1` Table and PartialObjectMetadata(List) responses.

Like kube-apiserver, the server renders every column (wide ones included, `priority: 1`) and lets
kubectl hide what it does not show. Printers are looked up by `ResourceType.group_resource`; kinds
without one get the Name/Age table.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from kubelite.objects.errors import BadRequest
from kubelite.objects.registry import ResourceType
from kubelite.objects.tables import basic, events, network, nodes, pods, workloads
from kubelite.objects.tables.common import Obj, Printer, mapping
from kubelite.objects.tables.duration import aware

META_API_VERSION = "meta.k8s.io/v1"
INCLUDE_OBJECT_POLICIES = ("None", "Metadata", "Object")

PRINTERS: dict[str, Printer] = {
    **pods.PRINTERS,
    **nodes.PRINTERS,
    **network.PRINTERS,
    **events.PRINTERS,
    **workloads.PRINTERS,
    **basic.PRINTERS,
}


def printer_for(rt: ResourceType) -> Printer:
    """The printer of a resource type, or the default Name/Age printer."""
    return PRINTERS.get(rt.group_resource, basic.DEFAULT)


def to_partial_object_metadata(obj: Obj) -> dict[str, Any]:
    """`PartialObjectMetadata` carrying the object's full metadata."""
    return {"kind": "PartialObjectMetadata", "apiVersion": META_API_VERSION, "metadata": mapping(obj, "metadata")}


def _list_meta(resource_version: str, continue_token: str) -> dict[str, str]:
    meta: dict[str, str] = {}
    if resource_version:
        meta["resourceVersion"] = resource_version
    if continue_token:
        meta["continue"] = continue_token
    return meta


def to_partial_object_metadata_list(objects: list[dict[str, Any]], *, resource_version: str,
                                    continue_token: str = "") -> dict[str, Any]:
    """`PartialObjectMetadataList` for `Accept: application/json;as=PartialObjectMetadataList;...`."""
    return {
        "kind": "PartialObjectMetadataList",
        "apiVersion": META_API_VERSION,
        "metadata": _list_meta(resource_version, continue_token),
        "items": [to_partial_object_metadata(obj) for obj in objects],
    }


def _row_object(obj: Obj, include_object: str) -> Obj | None:
    if include_object == "None":
        return None
    if include_object == "Object":
        return obj
    return to_partial_object_metadata(obj)


def _row(printer: Printer, obj: Obj, include_object: str, now: datetime) -> dict[str, Any]:
    row: dict[str, Any] = {"cells": printer.cells(obj, now)}
    if printer.conditions is not None and (conditions := printer.conditions(obj)):
        row["conditions"] = conditions
    if (included := _row_object(obj, include_object)) is not None:
        row["object"] = included
    return row


def to_table(rt: ResourceType, objects: list[dict[str, Any]], *, resource_version: str = "",
             include_object: str = "Metadata", continue_token: str = "",
             now: datetime | None = None) -> dict[str, Any]:
    """A `meta.k8s.io/v1` Table of `objects` (one row each, in order) for kubectl to print.

    `include_object` is the `includeObject` table option: "None", "Metadata" (the default, also for
    "") or "Object"; anything else is a BadRequest, as upstream rejects it. For a single-object GET
    pass the object's resourceVersion.
    """
    policy = include_object or "Metadata"
    if policy not in INCLUDE_OBJECT_POLICIES:
        raise BadRequest(f"unrecognized includeObject value: {json.dumps(include_object)}")
    printer = printer_for(rt)
    moment = aware(now)
    return {
        "kind": "Table",
        "apiVersion": META_API_VERSION,
        "metadata": _list_meta(resource_version, continue_token),
        "columnDefinitions": [column.to_dict() for column in printer.columns],
        "rows": [_row(printer, obj, policy, moment) for obj in objects],
    }
