"""String formats: upstream's `k8s.io/apimachinery/pkg/util/validation` checks and messages.

Each `is_*` returns the list of problems (empty when valid), worded exactly as upstream, so callers
turn each into one Invalid cause. Lengths are in bytes, as Go's `len` counts them.
"""

from __future__ import annotations

import ipaddress
import re

from kubelite.objects.errors import Cause
from kubelite.objects.validation.fielderr import invalid

DNS1123_LABEL_FMT = "[a-z0-9]([-a-z0-9]*[a-z0-9])?"
DNS1123_SUBDOMAIN_FMT = DNS1123_LABEL_FMT + "(\\." + DNS1123_LABEL_FMT + ")*"
DNS1123_LABEL_UNDERSCORE_FMT = "_?[a-z0-9]([-_a-z0-9]*[a-z0-9])?"
DNS1123_SUBDOMAIN_UNDERSCORE_FMT = DNS1123_LABEL_UNDERSCORE_FMT + "(\\." + DNS1123_LABEL_UNDERSCORE_FMT + ")*"
DNS1035_LABEL_FMT = "[a-z]([-a-z0-9]*[a-z0-9])?"
LABEL_KEY_FMT = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
LABEL_VALUE_FMT = "(" + LABEL_KEY_FMT + ")?"
CONFIG_MAP_KEY_FMT = "[-._a-zA-Z0-9]+"
PERCENT_FMT = "[0-9]+%"
HTTP_HEADER_NAME_FMT = "[-A-Za-z0-9]+"

_DNS1123_LABEL_MSG = ("a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', "
                      "and must start and end with an alphanumeric character")
_DNS1123_SUBDOMAIN_MSG = ("a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, "
                          "'-' or '.', and must start and end with an alphanumeric character")
_DNS1123_SUBDOMAIN_UNDERSCORE_MSG = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '_', '-' or '.', "
    "and must start and end with an alphanumeric character")
_DNS1035_LABEL_MSG = ("a DNS-1035 label must consist of lower case alphanumeric characters or '-', "
                      "start with an alphabetic character, and end with an alphanumeric character")
_LABEL_KEY_MSG = ("must consist of alphanumeric characters, '-', '_' or '.', "
                  "and must start and end with an alphanumeric character")
_LABEL_VALUE_MSG = ("a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or "
                    "'.', and must start and end with an alphanumeric character")
_CONFIG_MAP_KEY_MSG = "a valid config key must consist of alphanumeric characters, '-', '_' or '.'"


def _bytes(value: str) -> int:
    return len(value.encode())


def _match(fmt: str, value: str) -> bool:
    return re.fullmatch(fmt, value) is not None


def regex_error(msg: str, fmt: str, *examples: str) -> str:
    if not examples:
        return f"{msg} (regex used for validation is '{fmt}')"
    # upstream appends "', " after every example and " or " between them: hence "',  or '"
    shown = "".join((" or " if i else "") + f"'{e}', " for i, e in enumerate(examples))
    return f"{msg} (e.g. {shown}regex used for validation is '{fmt}')"


def max_len_chars(n: int) -> str:
    return f"must be no more than {n} characters"


def max_len_bytes(n: int) -> str:
    return f"must be no more than {n} bytes"


def inclusive_range(lo: int, hi: int) -> str:
    return f"must be between {lo} and {hi}, inclusive"


def is_dns1123_label(value: str) -> list[str]:
    errs = [max_len_chars(63)] if _bytes(value) > 63 else []
    if not _match(DNS1123_LABEL_FMT, value):
        if _match(DNS1123_SUBDOMAIN_FMT, value):
            errs.append("must not contain dots")
        else:
            errs.append(regex_error(_DNS1123_LABEL_MSG, DNS1123_LABEL_FMT, "my-name", "123-abc"))
    return errs


def is_dns1123_subdomain(value: str) -> list[str]:
    errs = [max_len_chars(253)] if _bytes(value) > 253 else []
    if not _match(DNS1123_SUBDOMAIN_FMT, value):
        errs.append(regex_error(_DNS1123_SUBDOMAIN_MSG, DNS1123_SUBDOMAIN_FMT, "example.com"))
    return errs


def is_dns1123_subdomain_underscore(value: str) -> list[str]:
    errs = [max_len_chars(253)] if _bytes(value) > 253 else []
    if not _match(DNS1123_SUBDOMAIN_UNDERSCORE_FMT, value):
        errs.append(regex_error(_DNS1123_SUBDOMAIN_UNDERSCORE_MSG, DNS1123_SUBDOMAIN_UNDERSCORE_FMT,
                                "example.com"))
    return errs


def is_dns1035_label(value: str) -> list[str]:
    errs = [max_len_chars(63)] if _bytes(value) > 63 else []
    if not _match(DNS1035_LABEL_FMT, value):
        errs.append(regex_error(_DNS1035_LABEL_MSG, DNS1035_LABEL_FMT, "my-name", "abc-123"))
    return errs


def is_qualified_name(value: str) -> list[str]:
    """A label key: an optional DNS subdomain prefix and '/', then a name of at most 63 bytes."""
    parts = value.split("/")
    if len(parts) > 2:
        return ["a valid label key " + regex_error(_LABEL_KEY_MSG, LABEL_KEY_FMT, "MyName", "my.name", "123-abc")
                + " with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"]
    errs: list[str] = []
    name = parts[-1]
    if len(parts) == 2:
        prefix = parts[0]
        if not prefix:
            errs.append("prefix part must be non-empty")
        else:
            errs.extend("prefix part " + msg for msg in _subdomain_bytes(prefix))
    if not name:
        errs.append("name part must be non-empty")
    elif _bytes(name) > 63:
        errs.append("name part " + max_len_bytes(63))
    if not _match(LABEL_KEY_FMT, name):
        errs.append("name part " + regex_error(_LABEL_KEY_MSG, LABEL_KEY_FMT, "MyName", "my.name", "123-abc"))
    return errs


def _subdomain_bytes(value: str) -> list[str]:
    # the label-key prefix uses the newer `content` package, which counts in bytes
    errs = [max_len_bytes(253)] if _bytes(value) > 253 else []
    if not _match(DNS1123_SUBDOMAIN_FMT, value):
        errs.append(regex_error(_DNS1123_SUBDOMAIN_MSG, DNS1123_SUBDOMAIN_FMT, "example.com"))
    return errs


def is_label_value(value: str) -> list[str]:
    errs = [max_len_bytes(63)] if _bytes(value) > 63 else []
    if not _match(LABEL_VALUE_FMT, value):
        errs.append(regex_error(_LABEL_VALUE_MSG, LABEL_VALUE_FMT, "MyValue", "my_value", "12345"))
    return errs


def is_config_map_key(value: str) -> list[str]:
    errs = [max_len_chars(253)] if _bytes(value) > 253 else []
    if not _match(CONFIG_MAP_KEY_FMT, value):
        errs.append(regex_error(_CONFIG_MAP_KEY_MSG, CONFIG_MAP_KEY_FMT, "key.name", "KEY_NAME", "key-name"))
    return errs + _chdir_prefix(value)


def _chdir_prefix(value: str) -> list[str]:
    if value == ".":
        return ["must not be '.'"]
    if value == "..":
        return ["must not be '..'"]
    if value.startswith(".."):
        return ["must not start with '..'"]
    return []


def is_relaxed_env_var_name(value: str) -> list[str]:
    errs = ["environment variable name must be non-empty"] if not value else []
    if any(ord(c) > 127 or not c.isprintable() or c == "=" for c in value):
        errs.append("a valid environment variable name must consist only of printable ASCII characters "
                    "other than '='")
    return errs


def is_valid_port_num(port: int) -> list[str]:
    return [] if 1 <= port <= 65535 else [inclusive_range(1, 65535)]


def is_valid_port_name(port: str) -> list[str]:
    errs = [max_len_chars(15)] if _bytes(port) > 15 else []
    if not _match("[-a-z0-9]+", port):
        errs.append("must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)")
    if not re.search("[a-z]", port):
        errs.append("must contain at least one letter (a-z)")
    if "--" in port:
        errs.append("must not contain consecutive hyphens")
    if port and (port[0] == "-" or port[-1] == "-"):
        errs.append("must not begin or end with a hyphen")
    return errs


def is_valid_percent(value: str) -> list[str]:
    if _match(PERCENT_FMT, value):
        return []
    return [regex_error("a valid percent string must be a numeric string followed by an ending '%'",
                        PERCENT_FMT, "1%", "93%")]


def is_http_header_name(value: str) -> list[str]:
    if _match(HTTP_HEADER_NAME_FMT, value):
        return []
    return [regex_error("a valid HTTP header must consist of alphanumeric characters or '-'",
                        HTTP_HEADER_NAME_FMT, "X-Header-Name")]


def is_path_segment_name(name: str, prefix: bool = False) -> list[str]:
    if not prefix and name in (".", ".."):
        return [f"may not be '{name}'"]
    return [f"may not contain '{c}'" for c in ("/", "%") if c in name]


def is_valid_id(value: int) -> list[str]:
    """User and group IDs: 0..MaxInt32."""
    return [] if 0 <= value <= 2147483647 else [inclusive_range(0, 2147483647)]


def parse_ip_sloppy(value: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """Go's `netutils.ParseIPSloppy`: also accepts IPv4 octets with leading zeros."""
    try:
        return ipaddress.ip_address(value)
    except ValueError:
        pass
    parts = value.split(".")
    if len(parts) == 4 and all(p.isdigit() and len(p) <= 3 and int(p) <= 255 for p in parts):
        return ipaddress.IPv4Address(".".join(str(int(p)) for p in parts))
    return None


def validate_ip(path: str, value: str) -> list[Cause]:
    """Upstream's `IsValidIP` (strict: canonical form, no leading zeros, no IPv4-mapped IPv6)."""
    ip = parse_ip_sloppy(value)
    if ip is None or "%" in value:
        return [invalid(path, value, "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)")]
    errs = []
    if isinstance(ip, ipaddress.IPv4Address) and str(ip) != value:
        errs.append(invalid(path, value, "must not have leading 0s"))
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        errs.append(invalid(path, value, "must not be an IPv4-mapped IPv6 address"))
    if errs:
        return errs
    canonical = str(ip)
    return [invalid(path, value, f'must be in canonical form ("{canonical}")')] if canonical != value else []


def validate_cidr(path: str, value: str) -> list[Cause]:
    try:
        net = ipaddress.ip_network(value, strict=False)
    except ValueError:
        return [invalid(path, value, "must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)")]
    if net.network_address != ipaddress.ip_interface(value).ip:
        return [invalid(path, value, "must not have bits set beyond the prefix length")]
    if str(net) != value:
        return [invalid(path, value, f'must be in canonical form ("{net}")')]
    return []
