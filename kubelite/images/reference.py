"""Image references, parsed and normalised as Docker does (distribution's `reference` package).

    busybox                    -> docker.io/library/busybox:latest
    <Docker Hub's legacy index name>/foo/bar -> docker.io/foo/bar:latest
    localhost:5000/app@sha256:.. -> localhost:5000/app@sha256:..   (a digest gets no default tag)

Grammar: `name [":" tag] ["@" digest]`, where name is `[domain "/"] path-component ("/" path-component)*`.
The first component is a domain when it contains "." or ":", is "localhost", or has upper-case
letters; otherwise the image lives on Docker Hub, and a single-component Hub name gets "library/".
Repository paths are lower case; a bare 64-hex string is an image ID, never a name. Every failure
raises `InvalidImageName` with Docker's wording, which the kubelet puts in its InvalidImageName
message.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from kubelite.images.api import InvalidImageName

DEFAULT_DOMAIN = "docker.io"
LEGACY_DEFAULT_DOMAIN = "index." + DEFAULT_DOMAIN  # Docker Hub's old name, normalised as Docker does
OFFICIAL_PREFIX = "library/"
DEFAULT_TAG = "latest"
NAME_TOTAL_LENGTH_MAX = 255

_ALNUM = r"[a-z0-9]+"
_SEPARATOR = r"(?:[_.]|__|-+)"
_PATH_COMPONENT = rf"{_ALNUM}(?:{_SEPARATOR}{_ALNUM})*"
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_HOST = rf"(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|\[[a-fA-F0-9:]+\])"
_DOMAIN = rf"{_HOST}(?::[0-9]+)?"
_NAME = rf"(?:{_DOMAIN}/)?{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*"
_TAG = r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}"
_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}"
_REFERENCE = re.compile(rf"({_NAME})(?::({_TAG}))?(?:@({_DIGEST}))?")
_IDENTIFIER = re.compile(r"[a-f0-9]{64}")
_DIGEST_HEX = {"sha256": 64, "sha384": 96, "sha512": 128}


@dataclass(frozen=True)
class Reference:
    domain: str  # docker.io, localhost:5000, [::1]:5000
    path: str  # library/busybox
    tag: str = ""
    digest: str = ""  # sha256:<hex>

    @property
    def repository(self) -> str:
        return f"{self.domain}/{self.path}"

    def __str__(self) -> str:
        text = self.repository
        if self.tag:
            text += f":{self.tag}"
        if self.digest:
            text += f"@{self.digest}"
        return text

    def with_default_tag(self) -> Reference:
        """Docker's TagNameOnly: `latest` unless a tag or a digest is given."""
        if self.tag or self.digest:
            return self
        return Reference(self.domain, self.path, DEFAULT_TAG)

    def familiar_name(self) -> str:
        """The short form Docker prints: busybox, foo/bar, localhost:5000/app."""
        if self.domain != DEFAULT_DOMAIN:
            return self.repository
        if self.path.startswith(OFFICIAL_PREFIX) and self.path.count("/") == 1:
            return self.path[len(OFFICIAL_PREFIX):]
        return self.path

    def familiar(self) -> str:
        text = self.familiar_name()
        if self.tag:
            text += f":{self.tag}"
        if self.digest:
            text += f"@{self.digest}"
        return text


def parse(text: str) -> Reference:
    """A reference as Docker's ParseNormalizedNamed reads it (no default tag added)."""
    if _IDENTIFIER.fullmatch(text):
        raise InvalidImageName(f"invalid repository name ({text}), cannot specify 64-byte hexadecimal strings")
    domain, remainder = split_domain(text)
    remote = remainder.split(":", 1)[0]
    if remote.lower() != remote:
        raise InvalidImageName(f"invalid reference format: repository name ({remote}) must be lowercase")
    return _parse_full(f"{domain}/{remainder}")


def normalize(text: str) -> str:
    """`busybox` -> `docker.io/library/busybox:latest`; raises InvalidImageName."""
    return str(parse(text).with_default_tag())


def split_domain(name: str) -> tuple[str, str]:
    """Docker's splitDockerDomain: (domain, remainder) with Hub defaults applied."""
    first, sep, rest = name.partition("/")
    if not sep:
        return DEFAULT_DOMAIN, OFFICIAL_PREFIX + name
    if first == "localhost" or any(c in first for c in ".:") or first.lower() != first:
        domain, remainder = first, rest
    else:
        domain, remainder = DEFAULT_DOMAIN, name
    if domain == LEGACY_DEFAULT_DOMAIN:
        domain = DEFAULT_DOMAIN
    if domain == DEFAULT_DOMAIN and "/" not in remainder:
        remainder = OFFICIAL_PREFIX + remainder
    return domain, remainder


def _parse_full(text: str) -> Reference:
    match = _REFERENCE.fullmatch(text)
    if match is None:
        if text and _REFERENCE.fullmatch(text.lower()):
            raise InvalidImageName("invalid reference format: repository name must be lowercase")
        raise InvalidImageName("invalid reference format")
    name, tag, digest = match.group(1), match.group(2) or "", match.group(3) or ""
    if len(name) > NAME_TOTAL_LENGTH_MAX:
        raise InvalidImageName(f"repository name must not be more than {NAME_TOTAL_LENGTH_MAX} characters")
    if digest:
        validate_digest(digest)
    domain, _, path = name.partition("/")
    return Reference(domain, path, tag, digest)


def validate_digest(digest: str) -> str:
    """`alg:hex` with a known algorithm and its exact lower-case hex length; returns it."""
    algorithm, _, encoded = digest.partition(":")
    length = _DIGEST_HEX.get(algorithm)
    if length is None:
        raise InvalidImageName(f"unsupported digest algorithm: {digest}")
    if len(encoded) != length or not re.fullmatch(r"[a-f0-9]+", encoded):
        raise InvalidImageName(f"invalid checksum digest format: {digest}")
    return digest


def is_image_id(text: str) -> bool:
    """`sha256:<64 hex>` or the bare 64 hex: an image ID rather than a name."""
    return bool(_IDENTIFIER.fullmatch(text.removeprefix("sha256:")))
