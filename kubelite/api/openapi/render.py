"""Assemble the Swagger 2.0 and OpenAPI 3.0 documents from the path model and the type schemas.

The two dialects differ in how parameters carry their type (`type` vs `schema`), how bodies are
given (a `body` parameter vs `requestBody`) and how responses name media types (`produces` vs a
`content` map); operations are otherwise the same model (`paths.Operation`).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from kubelite.api.discovery import KUBERNETES_VERSION
from kubelite.api.openapi import schemas
from kubelite.api.openapi.params import Param, query
from kubelite.api.openapi.paths import STRING, Operation, PathItem, group_version_paths
from kubelite.api.openapi.schemas import Dialect
from kubelite.objects.registry import Registry

Doc = dict[str, Any]

INFO = {"title": "Kubernetes", "version": KUBERNETES_VERSION["gitVersion"]}
BEARER = {"BearerToken": {"description": "Bearer Token authentication", "in": "header", "name": "authorization",
                          "type": "apiKey"}}


def group_versions(registry: Registry) -> list[tuple[str, str]]:
    return [(g, v) for g in registry.groups() for v in registry.versions(g)]


def gv_path(group: str, version: str) -> str:
    """The v3 discovery key of a group-version: `api/v1`, `apis/apps/v1`."""
    return f"apis/{group}/{version}" if group else f"api/{version}"


def served(registry: Registry) -> frozenset[tuple[str, str]]:
    return frozenset({("", "v1"), *group_versions(registry)})


# -- Swagger 2.0 -------------------------------------------------------------------------------------

def swagger(registry: Registry) -> Doc:
    items = [item for g, v in group_versions(registry) for item in group_version_paths(registry, g, v)]
    return {
        "swagger": "2.0",
        "info": INFO,
        "paths": {item.path: _path_v2(item) for item in items},
        "definitions": schemas.definitions(_closure(items), "v2", served(registry)),
        "securityDefinitions": BEARER,
        "security": [{"BearerToken": []}],
    }


def _path_v2(item: PathItem) -> Doc:
    out: Doc = {op.method: _operation_v2(op) for op in item.operations}
    if item.params:
        out["parameters"] = [_param_v2(p) for p in item.params]
    return out


def _operation_v2(op: Operation) -> Doc:
    parameters = [_param_v2(query(name)) for name in op.params]
    if op.body is not None:
        body = {"in": "body", "name": "body", "schema": schemas.ref(op.body, "v2")}
        parameters.insert(0, body if op.method == "delete" else {**body, "required": True})
    responses: Doc = {str(r.code): {"description": r.description, "schema": _response_schema(r.schema, "v2")}
                      for r in op.responses}
    responses["401"] = {"description": "Unauthorized"}
    out: Doc = {"description": op.description, "consumes": list(op.consumes), "produces": list(op.produces),
                "schemes": ["https"], "tags": [op.tag], "operationId": op.operation_id, "responses": responses}
    if parameters:
        out["parameters"] = parameters
    return out | _extensions(op)


def _param_v2(p: Param) -> Doc:
    out: Doc = {"description": p.description, "in": p.location, "name": p.name, "type": p.type,
                "uniqueItems": True}
    if p.required:
        out["required"] = True
    return out


# -- OpenAPI 3.0 -------------------------------------------------------------------------------------

def openapi_v3(registry: Registry, group: str, version: str) -> Doc:
    items = group_version_paths(registry, group, version)
    return {
        "openapi": "3.0.0",
        "info": INFO,
        "paths": {item.path: _path_v3(item) for item in items},
        "components": {"schemas": schemas.definitions(_closure(items), "v3", served(registry)),
                       "securitySchemes": BEARER},
    }


def _path_v3(item: PathItem) -> Doc:
    out: Doc = {op.method: _operation_v3(op) for op in item.operations}
    if item.params:
        out["parameters"] = [_param_v3(p) for p in item.params]
    return out


def _operation_v3(op: Operation) -> Doc:
    responses = {str(r.code): {"description": r.description,
                               "content": {t: {"schema": _response_schema(r.schema, "v3")} for t in op.produces}}
                 for r in op.responses}
    out: Doc = {"tags": [op.tag], "description": op.description, "operationId": op.operation_id,
                "responses": responses}
    if op.params:
        out["parameters"] = [_param_v3(query(name)) for name in op.params]
    if op.body is not None:
        body: Doc = {"content": {t: {"schema": schemas.ref(op.body, "v3")} for t in op.consumes}}
        out["requestBody"] = body if op.method == "delete" else {**body, "required": True}
    return out | _extensions(op)


def _param_v3(p: Param) -> Doc:
    out: Doc = {"name": p.name, "in": p.location, "description": p.description,
                "schema": {"type": p.type, "uniqueItems": True}}
    if p.required:
        out["required"] = True
    return out


def index_v3(hashes: dict[str, str]) -> Doc:
    """The /openapi/v3 discovery document: each group-version's URL pinned to its content hash."""
    return {"paths": {key: {"serverRelativeURL": f"/openapi/v3/{key}?hash={etag}"}
                      for key, etag in sorted(hashes.items())}}


# -- shared ------------------------------------------------------------------------------------------

def _response_schema(name: str, dialect: Dialect) -> Doc:
    return {"type": "string"} if name == STRING else schemas.ref(name, dialect)


def _extensions(op: Operation) -> Doc:
    if not op.action:
        return {}
    group, version, kind = op.gvk
    return {"x-kubernetes-action": op.action,
            "x-kubernetes-group-version-kind": {"group": group, "kind": kind, "version": version}}


def _closure(items: Iterable[PathItem]) -> set[str]:
    """Every definition the operations name (bodies, responses) and everything those refer to."""
    roots = {name for item in items for op in item.operations
             for name in (op.body, *(r.schema for r in op.responses)) if name}
    return schemas.closure(roots)
