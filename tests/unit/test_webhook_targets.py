"""Webhook targets: internal addresses are refused in every spelling, public ones pass."""

from __future__ import annotations

import ipaddress

import pytest

from approvals.webhook_targets import (
    TargetRefused,
    check_address,
    check_url,
    literal_address,
    parse_networks,
)

INTERNAL_URLS = [
    "http://127.0.0.1:6379/",
    "http://localhost/",
    "http://LOCALHOST./x",
    "http://api.localhost/",
    "http://[::1]/",
    "http://169.254.169.254/latest/meta-data/",
    "http://[fd00:ec2::254]/",
    "http://0.0.0.0:22/",
    "http://2130706433:6379/",
    "http://0x7f000001/",
    "http://0177.0.0.1/",
    "http://0x7f.1/",
    "http://127.1/",
    "http://017700000001/",
    "http://[::ffff:127.0.0.1]/",
    "http://[::ffff:7f00:1]/",
    "http://[::ffff:a9fe:a9fe]/",
    "http://[64:ff9b::a00:1]/",
    "http://[2002:7f00:1::]/",
    "http://[fe80::1%25eth0]/",
    "http://10.1.2.3/",
    "http://172.16.0.1/",
    "http://192.168.1.1/",
    "http://100.64.0.1/",
    "http://224.0.0.1/",
    "http://[ff02::1]/",
    "http://240.0.0.1/",
    "http://255.255.255.255/",
    "http://[::]/",
    "http://0/",
    "https://192.0.2.10/",
]

MALFORMED_URLS = [
    "http://example.com/\r\nX-Injected: 1",
    "http://example.com/a\nb",
    "http://exa\tmple.com/",
    "http://example.com/ space",
    "http://example.com/\x00",
    "http://example.com/\x7f",
    "http://ex_ample.com/",
    "http://example.com:99999/",
    "http://99999999999/",
    "ftp://example.com/",
    "https://user:pw@example.com/",
    "https://example.com/#frag",
    "example.com/hook",
    "http:///nohost",
]


@pytest.mark.parametrize("url", INTERNAL_URLS)
def test_internal_addresses_are_refused_in_any_spelling(url: str) -> None:
    """Loopback, link-local, private, unspecified, multicast and reserved literals are refused."""
    with pytest.raises(TargetRefused):
        check_url(url)


@pytest.mark.parametrize("url", MALFORMED_URLS)
def test_control_characters_and_malformed_urls_are_refused(url: str) -> None:
    """CR/LF and other control characters, bad ports, odd schemes and userinfo are refused."""
    with pytest.raises(TargetRefused):
        check_url(url)


@pytest.mark.parametrize(
    "url",
    [
        "https://hooks.example.com/pushgate",
        "http://93.184.215.14:8443/x?y=1",
        "https://[2606:2800:21f:cb07:6820:80da:af6b:8b2c]/",
        "https://xn--bcher-kva.example/",
        "https://example.com./hook",
    ],
)
def test_public_targets_are_accepted(url: str) -> None:
    """Public names and public address literals pass the check at PUT."""
    check_url(url)


def test_an_allowed_network_lets_an_operator_reach_a_private_receiver() -> None:
    """PUSHGATE_WEBHOOK_ALLOW_NETWORKS opens exactly the listed networks, nothing around them."""
    allowed = parse_networks("10.20.0.0/16, 127.0.0.1/32")
    check_url("http://10.20.3.4/hook", allowed)
    check_url("http://2130706433:8080/", allowed)
    check_address("127.0.0.1", allowed)
    with pytest.raises(TargetRefused):
        check_url("http://10.21.0.1/hook", allowed)
    with pytest.raises(TargetRefused):
        check_address("127.0.0.2", allowed)


def test_legacy_ipv4_spellings_read_as_the_resolver_reads_them() -> None:
    """Decimal, hex, octal and short forms name the address a resolver would connect to."""
    loopback = ipaddress.ip_address("127.0.0.1")
    for spelling in ("2130706433", "0x7f000001", "0177.0.0.1", "127.1", "0x7f.0.0.1", "[::1]"):
        found = literal_address(spelling)
        assert found is not None and found.is_loopback, spelling
    assert literal_address("example.com") is None
    assert literal_address(str(loopback)) == loopback


def test_resolved_addresses_are_checked_before_connecting() -> None:
    """The send-time check refuses internal resolved addresses (IPv4 and IPv6) with a reason."""
    for address in ("127.0.0.1", "::1", "10.0.0.1", "169.254.169.254", "::ffff:10.0.0.1"):
        with pytest.raises(TargetRefused, match="refused to connect"):
            check_address(address)
    check_address("93.184.215.14")


def test_bad_allow_networks_are_named() -> None:
    """A malformed CIDR in the allow list is an error naming the entry."""
    with pytest.raises(ValueError, match="nope"):
        parse_networks("10.0.0.0/8,nope")
