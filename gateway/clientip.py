"""The client's address, believing ``X-Forwarded-For`` only from trusted proxies."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(entries: Sequence[str]) -> list[Network]:
    """Parse ``PUSHGATE_TRUSTED_PROXIES`` entries (addresses or CIDRs)."""
    return [ipaddress.ip_network(entry, strict=False) for entry in entries]


def _trusted(address: str, networks: Sequence[Network]) -> bool:
    try:
        ip = ipaddress.ip_address(address.strip())
    except ValueError:
        return False
    return any(ip in network for network in networks)


def client_ip(peer: str | None, forwarded_for: str | None, networks: Sequence[Network]) -> str:
    """The nearest address in the chain that is not one of our trusted proxies."""
    address = peer or ""
    if not forwarded_for or not networks or not _trusted(address, networks):
        return address
    for hop in reversed([h.strip() for h in forwarded_for.split(",") if h.strip()]):
        if not _trusted(hop, networks):
            return hop
        address = hop
    return address
