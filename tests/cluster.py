"""Private Redis Clusters for the Cluster-mode tests: three primaries, with or without replicas."""

from __future__ import annotations

import os
import signal
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager

import redis

from pushgate.embedded import EmbeddedRedis, cluster_node_args, form_cluster, free_port


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
def embedded_cluster(
    *, primaries: int = 3, replicas: int = 0, node_timeout_ms: int = 15_000
) -> Iterator[list[EmbeddedRedis]]:
    """Start cluster-enabled servers and join them: the first ``primaries`` nodes share the
    slots, then ``replicas`` replicas per primary, in the same order. Failover tests pass a
    short node timeout; the default (the servers' own) keeps a loaded machine from failing
    nodes over that are only slow."""
    nodes = [
        EmbeddedRedis(
            port=_port_with_free_bus(),
            appendonly=False,
            extra_args=cluster_node_args(node_timeout_ms),
        )
        for _ in range(primaries * (replicas + 1))
    ]
    try:
        for node in nodes:
            node.start()
        form_cluster([node.port for node in nodes], replicas=replicas)
        yield nodes
    finally:
        for node in nodes:
            if node.pid is not None:
                os.kill(node.pid, signal.SIGCONT)  # a paused node would not stop
            node.close()


def node_info(port: int) -> dict[str, str]:
    """``CLUSTER INFO`` of one node, as a dict."""
    client = redis.Redis(port=port, decode_responses=True, socket_timeout=5)
    try:
        text = client.execute_command("CLUSTER", "INFO")
    finally:
        client.close()
    return dict(line.split(":", 1) for line in text.splitlines() if ":" in line)


def primary_port_of_slot(port: int, slot: int) -> int:
    """The port of the primary serving ``slot``, as the node on ``port`` sees it."""
    client = redis.Redis(port=port, decode_responses=True, socket_timeout=5)
    try:
        for first, last, primary, *_ in client.execute_command("CLUSTER", "SLOTS"):
            if int(first) <= slot <= int(last):
                return int(primary[1])
    finally:
        client.close()
    raise LookupError(f"slot {slot} is not served")


def replica_offsets_caught_up(primary_port: int) -> bool:
    """Whether the primary has replicas, all synced and acknowledging all it sent them."""
    client = redis.Redis(port=primary_port, decode_responses=True, socket_timeout=5)
    try:
        info = client.info("replication")
    finally:
        client.close()
    offset = int(info["master_repl_offset"])
    replicas = [v for k, v in info.items() if k.startswith("slave") and isinstance(v, dict)]
    return bool(replicas) and all(
        r.get("state") == "online" and int(r["offset"]) >= offset for r in replicas
    )


def replicas_acknowledge(primary_port: int, key: str) -> bool:
    """Whether a write of ``key`` (in a slot the primary serves) reaches a replica within
    0.2 s: after a full sync a primary streams to its replica only once the replica's first
    acknowledgement arrived (up to a second later), although it lists it online at once."""
    client = redis.Redis(port=primary_port, decode_responses=True, socket_timeout=5)
    try:
        client.incr(key)
        return int(client.execute_command("WAIT", 1, 200)) >= 1
    finally:
        client.close()


def until(check: object, what: str, timeout: float = 30.0) -> None:
    """Poll a synchronous check every 50 ms; fail after ``timeout`` seconds."""
    assert callable(check)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except (redis.RedisError, OSError):
            pass
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")
