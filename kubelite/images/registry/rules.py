"""The distribution spec's rules as pure functions: the error catalogue, repository names, tags,
digests, `Content-Range`, upload `Range` headers, pagination and the URL layout.

Nothing here does I/O; the handlers turn these decisions into responses. Every client mistake
becomes a `RegistryError` carrying one of the spec's error codes, so the server answers with the
standard body `{"errors": [{"code", "message", "detail"}]}` and never a traceback.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

# code -> (HTTP status, message): the spec's table (distribution-spec "Error Codes") with the
# reference registry's statuses. PAGINATION_NUMBER_INVALID is the reference registry's code for a
# bad `n`; UNKNOWN is its catch-all for server faults.
CATALOGUE: dict[str, tuple[int, str]] = {
    "BLOB_UNKNOWN": (404, "blob unknown to registry"),
    "BLOB_UPLOAD_INVALID": (400, "blob upload invalid"),
    "BLOB_UPLOAD_UNKNOWN": (404, "blob upload unknown to registry"),
    "DIGEST_INVALID": (400, "provided digest did not match uploaded content"),
    "MANIFEST_BLOB_UNKNOWN": (400, "manifest references a manifest or blob unknown to registry"),
    "MANIFEST_INVALID": (400, "manifest invalid"),
    "MANIFEST_UNKNOWN": (404, "manifest unknown to registry"),
    "NAME_INVALID": (400, "invalid repository name"),
    "NAME_UNKNOWN": (404, "repository name not known to registry"),
    "SIZE_INVALID": (400, "provided length did not match content length"),
    "UNAUTHORIZED": (401, "authentication required"),
    "DENIED": (403, "requested access to the resource is denied"),
    "UNSUPPORTED": (405, "the operation is unsupported"),
    "TOOMANYREQUESTS": (429, "too many requests"),
    "PAGINATION_NUMBER_INVALID": (400, "invalid number of results requested"),
    "UNKNOWN": (500, "unknown error"),
}


class RegistryError(Exception):
    """A protocol error: `code` from CATALOGUE, an optional JSON `detail`, the status overridable
    (416 for an out-of-order chunk) and extra headers (the upload's `Range` after a 416).
    `also` holds the details of further errors of the same code (one per missing blob)."""

    def __init__(self, code: str, detail: Any = None, *, status: int | None = None,
                 headers: Mapping[str, str] | None = None, message: str | None = None,
                 also: Sequence[Any] = ()) -> None:
        default_status, default_message = CATALOGUE[code]
        self.code = code
        self.detail = detail
        self.status = status or default_status
        self.headers = dict(headers or {})
        self.message = message or default_message
        self.also = list(also)
        super().__init__(f"{code}: {self.message}" + (f" ({detail})" if detail is not None else ""))

    def body(self) -> dict[str, Any]:
        errors = []
        for detail in [self.detail, *self.also]:
            error: dict[str, Any] = {"code": self.code, "message": self.message}
            if detail is not None:
                error["detail"] = detail
            errors.append(error)
        return {"errors": errors}


# ----- names, tags, digests ----------------------------------------------------------------------

_COMPONENT = r"[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*"
NAME = re.compile(rf"{_COMPONENT}(?:/{_COMPONENT})*")
NAME_MAX = 255  # "the total length ... MUST be less than 256 characters"
TAG = re.compile(r"[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}")
_DIGEST = re.compile(r"([a-z0-9]+(?:[+._-][a-z0-9]+)*):([a-zA-Z0-9=_-]+)")
# The algorithms we can verify, with their hex lengths (the OCI image spec's registered ones).
ALGORITHMS = {"sha256": 64, "sha384": 96, "sha512": 128}


def check_name(name: str) -> str:
    if len(name) > NAME_MAX or NAME.fullmatch(name) is None:
        raise RegistryError("NAME_INVALID", {"name": name})
    return name


def is_tag(reference: str) -> bool:
    return TAG.fullmatch(reference) is not None


@dataclass(frozen=True, order=True)
class Digest:
    algorithm: str
    hex: str

    def __str__(self) -> str:
        return f"{self.algorithm}:{self.hex}"


def parse_digest(text: str) -> Digest:
    """"sha256:<64 lower-case hex>" (or sha384/sha512); anything else is DIGEST_INVALID (400), as
    the spec asks for a malformed digest or an algorithm the registry does not support."""
    match = _DIGEST.fullmatch(text)
    if match is None:
        raise RegistryError("DIGEST_INVALID", {"digest": text}, message=f"malformed digest {text!r}")
    algorithm, encoded = match.groups()
    length = ALGORITHMS.get(algorithm)
    if length is None:
        raise RegistryError("DIGEST_INVALID", {"digest": text},
                            message=f"unsupported digest algorithm {algorithm!r} (supported: {', '.join(ALGORITHMS)})")
    if len(encoded) != length or re.fullmatch(r"[a-f0-9]+", encoded) is None:
        raise RegistryError("DIGEST_INVALID", {"digest": text},
                            message=f"a {algorithm} digest is {length} lower-case hex characters")
    return Digest(algorithm, encoded)


def is_digest_reference(reference: str) -> bool:
    """A manifest reference with ':' is meant as a digest (tags cannot contain ':')."""
    return ":" in reference


# ----- uploads -----------------------------------------------------------------------------------

_CONTENT_RANGE = re.compile(r"(?:bytes[ =])?([0-9]+)-([0-9]+)(?:/(?:[0-9]+|\*))?")
UPLOAD_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def parse_content_range(text: str) -> tuple[int, int]:
    """A chunk's inclusive byte range: the spec's "<start>-<end>"; RFC 9110's "bytes <start>-<end>/<total>"
    is accepted too, since some clients send it."""
    match = _CONTENT_RANGE.fullmatch(text.strip())
    if match is None:
        raise RegistryError("BLOB_UPLOAD_INVALID", {"Content-Range": text},
                            message=f"malformed Content-Range {text!r} (want <start>-<end>)")
    start, end = int(match.group(1)), int(match.group(2))
    if end < start:
        raise RegistryError("BLOB_UPLOAD_INVALID", {"Content-Range": text}, status=416,
                            message=f"Content-Range {text!r} ends before it starts")
    return start, end


def check_chunk(start: int, end: int, *, offset: int, length: int | None) -> None:
    """A chunk must begin where the upload ends (else 416) and be as long as its body."""
    if start != offset:
        raise RegistryError("BLOB_UPLOAD_INVALID", {"offset": offset, "start": start}, status=416,
                            message=f"chunk starts at byte {start}, the upload has {offset} bytes: "
                                    "send the next chunk from there (GET the upload URL for its Range)")
    if length is not None and end - start + 1 != length:
        raise RegistryError("SIZE_INVALID", {"Content-Range": f"{start}-{end}", "Content-Length": length},
                            message=f"Content-Range {start}-{end} is {end - start + 1} bytes, the body {length}")


def range_header(size: int) -> str:
    """The upload's `Range: 0-<last byte>` ("0-0" while empty, as the reference registry says)."""
    return f"0-{max(size - 1, 0)}"


# ----- pagination ----------------------------------------------------------------------------------

PAGE_MAX = 10_000  # the most entries one response carries; more are reached through the Link header


def parse_page(query: Mapping[str, str]) -> tuple[int | None, str]:
    raw = query.get("n")
    if raw is None or raw == "":
        return None, query.get("last", "")
    if not raw.isdigit():
        raise RegistryError("PAGINATION_NUMBER_INVALID", {"n": raw}, message=f"n must be a non-negative integer, not {raw!r}")
    return int(raw), query.get("last", "")


def paginate(items: Sequence[str], n: int | None, last: str) -> tuple[list[str], str | None]:
    """Entries after `last` (exclusive) in sorted `items`, at most `n` (or PAGE_MAX); also the
    `last` of the next page when there is one (n=0 gives an empty page and no next page)."""
    start = bisect.bisect_right(items, last) if last else 0
    limit = PAGE_MAX if n is None else min(n, PAGE_MAX)
    page = list(items[start:start + limit])
    more = limit > 0 and start + limit < len(items)
    return page, (page[-1] if more else None)


# ----- URL layout ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Route:
    kind: str  # base | catalog | tags | manifest | uploads | upload | blob | referrers
    name: str = ""
    arg: str = ""


# Longest name first: the tail after the name has a fixed shape, so a greedy name is the right one.
_ROUTES = [
    ("tags", re.compile(r"(.+)/tags/list")),
    ("manifest", re.compile(r"(.+)/manifests/([^/]+)")),
    ("uploads", re.compile(r"(.+)/blobs/uploads/?")),
    ("upload", re.compile(r"(.+)/blobs/uploads/([^/]+)")),
    ("blob", re.compile(r"(.+)/blobs/([^/]+)")),
    ("referrers", re.compile(r"(.+)/referrers/([^/]+)")),
]


def route(path: str) -> Route | None:
    """Which endpoint a path is, with its repository name checked (NAME_INVALID); None: not ours."""
    if path in ("/v2", "/v2/"):
        return Route("base")
    if path == "/v2/_catalog":
        return Route("catalog")
    if not path.startswith("/v2/"):
        return None
    rest = path[len("/v2/"):]
    for kind, pattern in _ROUTES:
        match = pattern.fullmatch(rest)
        if match is not None:
            groups = match.groups()
            return Route(kind, check_name(groups[0]), groups[1] if len(groups) > 1 else "")
    return None


def parse_listen(text: str) -> list[tuple[str, int]]:
    """"127.0.0.1:5000,[::1]:5000,198.19.128.1:5000" -> [(host, port), ...]; a port is required."""
    found = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        host, sep, port = item.rpartition(":")
        host = host.removeprefix("[").removesuffix("]")
        if not sep or not host or not port.isdigit() or int(port) > 65535:
            raise ValueError(f"registry listen address {item!r} is not host:port (e.g. 127.0.0.1:5000)")
        found.append((host, int(port)))
    return found
