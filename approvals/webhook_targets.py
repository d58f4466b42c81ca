"""Where a webhook may be sent (SPEC §9): public unicast addresses only, unless an operator
allows a network on purpose (``PUSHGATE_WEBHOOK_ALLOW_NETWORKS``).

The gateway checks a URL when it is set (every spelling of an address literal counts), and
the worker checks each resolved address again right before it connects, so a name that
later resolves to an internal address (DNS rebinding) is refused too.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Iterable, Sequence
from urllib.parse import urlsplit

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

#: RFC 6052 well-known NAT64 prefix: the low 32 bits are an IPv4 address
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
#: what a resolver would read as a legacy IPv4 literal (decimal, octal, hex, short forms)
_LEGACY_IPV4 = re.compile(r"^(0[xX][0-9a-fA-F]*|[0-9]+)(\.(0[xX][0-9a-fA-F]*|[0-9]+)){0,3}$")
#: one label of a DNS host name: letters, digits and inner hyphens (IDNs arrive as punycode)
_LABEL = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")


class TargetRefused(ValueError):
    """The URL or address may not receive webhooks; the message says why."""


def parse_networks(text: str) -> tuple[Network, ...]:
    """A comma-separated CIDR list (``10.0.0.0/8, fd00::/8``); ValueError names a bad entry."""
    networks: list[Network] = []
    for entry in (part.strip() for part in text.split(",")):
        if entry:
            try:
                networks.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                raise ValueError(f"{entry!r} is not an address or CIDR network") from None
    return tuple(networks)


def literal_address(host: str) -> Address | None:
    """The address ``host`` spells, in any form a resolver accepts, or None for a name.

    ``127.0.0.1``, ``2130706433``, ``0x7f.1``, ``0177.0.0.1`` and ``[::ffff:127.0.0.1]`` all
    spell the same loopback address.
    """
    host = host.strip("[]")
    try:
        return ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        pass
    if _LEGACY_IPV4.fullmatch(host.rstrip(".")):
        try:
            return ipaddress.IPv4Address(socket.inet_aton(host.rstrip(".")))
        except OSError:
            raise TargetRefused(f"{host!r} is not a valid address") from None
    return None


def _embedded_ipv4(address: Address) -> list[Address]:
    """IPv4 addresses carried inside an IPv6 one (mapped, 6to4, Teredo, NAT64)."""
    if not isinstance(address, ipaddress.IPv6Address):
        return []
    found: list[Address] = []
    if address.ipv4_mapped is not None:
        found.append(address.ipv4_mapped)
    if address.sixtofour is not None:
        found.append(address.sixtofour)
    if address.teredo is not None:
        found.extend(address.teredo)
    if address in _NAT64:
        found.append(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
    return found


def _kind(address: Address) -> str | None:
    """What makes ``address`` internal, or None for a public unicast address."""
    checks = (
        ("unspecified", address.is_unspecified),
        ("loopback", address.is_loopback),
        ("link-local", address.is_link_local),
        ("multicast", address.is_multicast),
        ("private", address.is_private),
        ("reserved", address.is_reserved),
        ("non-public", not address.is_global),
    )
    return next((name for name, hit in checks if hit), None)


def refusal(address: Address, allowed: Sequence[Network] = ()) -> str | None:
    """Why ``address`` may not receive webhooks, or None when it may."""
    if any(address in network for network in allowed):
        return None
    for candidate in (address, *_embedded_ipv4(address)):
        kind = _kind(candidate)
        if kind is not None:
            return f"{address} is a {kind} address"
    return None


def check_address(address: str, allowed: Sequence[Network] = ()) -> None:
    """Raise TargetRefused when a resolved address may not be connected to."""
    reason = refusal(ipaddress.ip_address(address.split("%", 1)[0]), allowed)
    if reason is not None:
        raise TargetRefused(f"refused to connect: {reason}")


def _valid_host_name(host: str) -> bool:
    name = host[:-1] if host.endswith(".") else host
    return 0 < len(name) <= 253 and all(_LABEL.fullmatch(label) for label in name.split("."))


def _control_characters(text: str) -> bool:
    return any(ord(ch) < 0x21 or 0x7F <= ord(ch) <= 0x9F for ch in text)


def check_url(url: str, allowed: Iterable[Network] = ()) -> None:
    """Raise TargetRefused unless ``url`` is an http(s) URL a webhook may be sent to."""
    if _control_characters(url):
        raise TargetRefused("must not contain spaces or control characters")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise TargetRefused("must be an absolute http:// or https:// URL")
    if parts.username is not None or parts.password is not None or parts.fragment:
        raise TargetRefused("must not carry credentials or a fragment")
    try:
        parts.port  # noqa: B018 - raises on a port that is not a number in range
    except ValueError:
        raise TargetRefused("has an invalid port") from None
    host = (parts.hostname or "").lower()
    if not host:
        raise TargetRefused("must name a host")
    address = literal_address(host)
    if address is None:
        if not _valid_host_name(host):
            raise TargetRefused(f"{host!r} is not a valid host name")
        name = host.rstrip(".")
        if name == "localhost" or name.endswith(".localhost"):
            raise TargetRefused(f"{host} names a loopback address")
        return
    reason = refusal(address, tuple(allowed))
    if reason is not None:
        raise TargetRefused(f"{reason}; webhooks go to public addresses only")
