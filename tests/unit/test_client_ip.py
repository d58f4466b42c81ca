"""X-Forwarded-For is believed only from trusted proxies."""

from __future__ import annotations

from gateway.clientip import client_ip, parse_networks

PROXIES = parse_networks(["10.0.0.0/8", "127.0.0.1"])


def test_untrusted_peer_is_the_client_whatever_it_claims() -> None:
    """A direct client cannot spoof its address with the header."""
    assert client_ip("203.0.113.9", "1.2.3.4", PROXIES) == "203.0.113.9"


def test_trusted_proxy_chain_yields_the_first_untrusted_hop() -> None:
    """Behind trusted proxies, the right-most untrusted address is the client."""
    assert client_ip("10.1.2.3", "198.51.100.7, 203.0.113.9, 10.0.0.5", PROXIES) == "203.0.113.9"


def test_no_proxies_configured_ignores_the_header() -> None:
    """Without PUSHGATE_TRUSTED_PROXIES the peer address is used."""
    assert client_ip("127.0.0.1", "198.51.100.7", []) == "127.0.0.1"
