"""What can go wrong talking to a registry, as exceptions whose messages say what to do.

`RegistryError` carries the distribution spec's error code (`MANIFEST_UNKNOWN`, `DIGEST_INVALID`,
...) from the response body; `NotFound` is the one the kubelet reports as upstream's
`<name>: not found`. Content whose digest does not match raises the store's `DigestMismatch`
(nothing of it is stored).
"""

from __future__ import annotations

import json
from typing import Any

NOT_FOUND_CODES = frozenset({"MANIFEST_UNKNOWN", "NAME_UNKNOWN", "BLOB_UNKNOWN", "NOT_FOUND"})


class DistributionError(Exception):
    """Any failure of a pull, push or login."""


class RegistryUnreachable(DistributionError):
    """No connection (refused, DNS, TLS handshake, timeout) to any of the registry's endpoints."""


class TransferBroken(DistributionError):
    """A connection broke while a blob was being transferred (nothing of it was stored)."""


class AuthError(DistributionError):
    """The registry or its token service refused every credential we had (or anonymous access)."""

    def __init__(self, message: str, *, last: str = "") -> None:
        super().__init__(message)
        self.last = last or message  # the last refusal, in the server's words


class RegistryError(DistributionError):
    def __init__(self, status: int, code: str, message: str, *, url: str = "") -> None:
        self.status, self.code, self.detail, self.url = status, code, message, url
        text = f"{code}: {message}" if code else message
        super().__init__(text)


class NotFound(RegistryError):
    """The repository, tag, manifest or blob does not exist on the registry."""


def error_from_response(status: int, reason: str, body: bytes, *, url: str, what: str) -> RegistryError:
    """The spec's `{"errors": [{"code", "message"}]}` body as an exception (any body works)."""
    code, message = _first_error(body)
    if not message:
        message = f"{what}: unexpected status {status} {reason}".strip()
    cls = NotFound if status == 404 or code in NOT_FOUND_CODES else RegistryError
    return cls(status, code, message, url=url)


def _first_error(body: bytes) -> tuple[str, str]:
    try:
        doc: Any = json.loads(body)
    except ValueError:
        return "", body.decode(errors="replace").strip()[:200]
    errors = doc.get("errors") if isinstance(doc, dict) else None
    if isinstance(errors, list) and errors and isinstance(errors[0], dict):
        return str(errors[0].get("code") or ""), str(errors[0].get("message") or "").strip()
    return "", ""
