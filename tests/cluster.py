"""A three-node Redis Cluster of private servers, for the Cluster-mode tests."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager

import redis

from pushgate.embedded import EmbeddedRedis, free_port

SLOT_RANGES = ((0, 5460), (5461, 10922), (10923, 16383))


def _port_with_free_bus() -> int:
    """A free port whose cluster bus port (port + 10000) is free and valid too."""
    for _ in range(200):
        port = free_port()
        if port + 10000 > 65535:
            continue
        try:
            with socket.socket() as probe:
                probe.bind(("127.0.0.1", port + 10000))
        except OSError:
            continue
        return port
    raise RuntimeError("no port pair for a cluster node")


@contextmanager
def embedded_cluster() -> Iterator[list[EmbeddedRedis]]:
    """Start three cluster-enabled servers, give each a third of the slots, join them."""
    nodes = [
        EmbeddedRedis(
            port=_port_with_free_bus(), appendonly=False, extra_args=("--cluster-enabled", "yes")
        )
        for _ in SLOT_RANGES
    ]
    try:
        for node in nodes:
            node.start()
        clients = [redis.Redis(port=node.port) for node in nodes]
        for client, (first, last) in zip(clients, SLOT_RANGES, strict=True):
            client.execute_command("CLUSTER", "ADDSLOTSRANGE", first, last)
        for node in nodes[1:]:
            clients[0].execute_command("CLUSTER", "MEET", "127.0.0.1", node.port)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            infos = [c.execute_command("CLUSTER", "INFO") for c in clients]
            texts = [i.decode() if isinstance(i, bytes) else str(i) for i in infos]
            if all("cluster_state:ok" in t and "cluster_known_nodes:3" in t for t in texts):
                break
            time.sleep(0.1)
        else:
            raise RuntimeError("the cluster did not become ready")
        for client in clients:
            client.close()
        yield nodes
    finally:
        for node in nodes:
            node.close()
