"""Small address helpers shared across packages."""

from __future__ import annotations

import ipaddress


def is_ip(text: str) -> bool:
    """Whether `text` is an IPv4 or IPv6 address (not a host name)."""
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True
