"""Ports handed to servers the tests and the demo start are not ones an outgoing connection
can take first."""

from __future__ import annotations

import socket

from pushgate.embedded import _ephemeral_ports, free_port


def test_free_ports_lie_outside_the_kernels_range_for_outgoing_connections() -> None:
    ephemeral = _ephemeral_ports()
    for _ in range(20):
        port = free_port()
        assert port not in ephemeral
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind(("127.0.0.1", port))  # and free
