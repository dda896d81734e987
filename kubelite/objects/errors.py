"""The error vocabulary: one exception class per metav1.Status reason.

Every layer raises these (or converts library exceptions into them at its edge); the API server
turns any StatusError into the JSON `Status` body kubectl prints. Nothing else may reach a client.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar


@dataclass(frozen=True)
class Cause:
    """One failing field: `field` is the upstream field path (`spec.template.spec.containers[0].name`)."""

    type: str  # FieldValueRequired, FieldValueInvalid, FieldValueNotSupported, FieldValueDuplicate, ...
    message: str
    field: str

    def to_dict(self) -> dict[str, str]:
        return {"reason": self.type, "message": self.message, "field": self.field}


class StatusError(Exception):
    code: ClassVar[int] = 500
    reason: ClassVar[str] = "InternalError"

    def __init__(self, message: str, *, details: dict[str, Any] | None = None,
                 causes: list[Cause] | None = None, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = dict(details or {})
        self.causes = list(causes or [])
        self.headers = dict(headers or {})

    def to_status(self) -> dict[str, Any]:
        status: dict[str, Any] = {
            "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": self.message, "reason": self.reason, "code": self.code,
        }
        details = dict(self.details)
        if self.causes:
            details["causes"] = [c.to_dict() for c in self.causes]
        if details:
            status["details"] = details
        return status


class BadRequest(StatusError):
    code, reason = 400, "BadRequest"


class Unauthorized(StatusError):
    code, reason = 401, "Unauthorized"


class Forbidden(StatusError):
    code, reason = 403, "Forbidden"


class NotFound(StatusError):
    code, reason = 404, "NotFound"


class MethodNotAllowed(StatusError):
    code, reason = 405, "MethodNotAllowed"


class NotAcceptable(StatusError):
    code, reason = 406, "NotAcceptable"


class AlreadyExists(StatusError):
    code, reason = 409, "AlreadyExists"


class Conflict(StatusError):
    code, reason = 409, "Conflict"


class Gone(StatusError):
    code, reason = 410, "Expired"


class RequestEntityTooLarge(StatusError):
    code, reason = 413, "RequestEntityTooLarge"


class UnsupportedMediaType(StatusError):
    code, reason = 415, "UnsupportedMediaType"


class Invalid(StatusError):
    code, reason = 422, "Invalid"


class TooManyRequests(StatusError):
    code, reason = 429, "TooManyRequests"


class InternalError(StatusError):
    code, reason = 500, "InternalError"


class NotImplementedYet(StatusError):
    code, reason = 501, "NotImplemented"


class ServiceUnavailable(StatusError):
    code, reason = 503, "ServiceUnavailable"


class Timeout(StatusError):
    code, reason = 504, "Timeout"


def not_found(group_resource: str, name: str) -> NotFound:
    group, _, kind = _split(group_resource)
    return NotFound(f'{group_resource} "{name}" not found',
                    details={"name": name, "group": group, "kind": kind} if group else
                    {"name": name, "kind": kind})


def already_exists(group_resource: str, name: str) -> AlreadyExists:
    group, _, kind = _split(group_resource)
    details = {"name": name, "kind": kind}
    if group:
        details["group"] = group
    return AlreadyExists(f'{group_resource} "{name}" already exists', details=details)


def conflict(group_resource: str, name: str, why: str) -> Conflict:
    group, _, kind = _split(group_resource)
    details = {"name": name, "kind": kind}
    if group:
        details["group"] = group
    return Conflict(f'Operation cannot be fulfilled on {group_resource} "{name}": {why}', details=details)


def invalid(kind: str, name: str, causes: list[Cause], *, group: str = "") -> Invalid:
    """The 422 upstream returns: `Deployment.apps "x" is invalid: [field: reason, ...]`."""
    qualified = f"{kind}.{group}" if group else kind
    parts = [f"{c.field}: {c.message}" if c.field else c.message for c in causes]
    summary = parts[0] if len(parts) == 1 else "[" + ", ".join(parts) + "]"
    details: dict[str, Any] = {"name": name, "kind": kind}
    if group:
        details["group"] = group
    return Invalid(f'{qualified} "{name}" is invalid: {summary}', details=details, causes=causes)


def _split(group_resource: str) -> tuple[str, str, str]:
    kind, _, group = group_resource.partition(".")
    return group, ".", kind
