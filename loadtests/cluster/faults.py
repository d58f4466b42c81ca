"""The faults the cluster rig injects during a run, each recorded with what it hit and when
the rig saw the system recover from it."""

from __future__ import annotations

import signal
import time
from collections import Counter
from dataclasses import dataclass, field

import redis
from redis.crc import key_slot
from stack import HOST, Node, Stack, http_status, until

from approvals.store import keys


@dataclass
class Fault:
    """One injected fault: what, on which process, when (epoch seconds), and what followed."""

    name: str
    target: str = ""
    started: float = 0.0
    recovered: float | None = None
    notes: list[str] = field(default_factory=list)

    def note(self, text: str) -> None:
        self.notes.append(f"+{time.time() - self.started:.1f} s: {text}")


def _slots(port: int) -> list[tuple[int, int, int]]:
    """(first slot, last slot, primary port) as the node on ``port`` sees the cluster."""
    client = redis.Redis(host=HOST, port=port, decode_responses=True, socket_timeout=2)
    try:
        return [(int(a), int(b), int(p[1])) for a, b, p, *_ in client.cluster("slots")]
    finally:
        client.close()


def _owner(port: int, slot: int) -> int | None:
    return next((p for a, b, p in _slots(port) if a <= slot <= b), None)


def _live(stack: Stack, but: Node) -> Node:
    return next(n for n in stack.nodes if n is not but and n.proc.running)


def busiest_primary(stack: Stack, shards: int, skip: set[int] | None = None) -> tuple[Node, int]:
    """The primary serving most shards (the auth tag counts as one more), and one of its
    slots."""
    seen: Counter[int] = Counter()
    slot_of: dict[int, int] = {}
    asked = (
        stack.nodes[0].port if stack.nodes[0].proc.running else _live(stack, stack.nodes[0]).port
    )
    tags = [keys.tag(s) for s in range(shards)] + [keys.AUTH_TAG]
    for tag in tags:
        slot = key_slot(tag.encode())
        owner = _owner(asked, slot)
        if owner is not None and owner not in (skip or set()):
            seen[owner] += 1
            slot_of[owner] = slot
    port = seen.most_common(1)[0][0]
    return next(n for n in stack.nodes if n.port == port), slot_of[port]


def _replica_linked(port: int) -> bool:
    client = redis.Redis(host=HOST, port=port, decode_responses=True, socket_timeout=2)
    try:
        info = client.info("replication")
    finally:
        client.close()
    return info.get("role") == "slave" and info.get("master_link_status") == "up"


def _wait_failover(stack: Stack, fault: Fault, victim: Node, slot: int) -> None:
    asked = _live(stack, victim)
    until("a replica to take over", 60, lambda: _owner(asked.port, slot) not in (None, victim.port))
    fault.recovered = time.time()
    fault.note(f"replica {HOST}:{_owner(asked.port, slot)} serves the slots")


def kill_primary(stack: Stack, shards: int) -> Fault:
    """kill -9 of the busiest primary; once a replica took over, it is started again and
    rejoins as a replica."""
    victim, slot = busiest_primary(stack, shards)
    fault = Fault("primary killed (kill -9)", f"valkey {HOST}:{victim.port}", time.time())
    victim.proc.signal(signal.SIGKILL)
    _wait_failover(stack, fault, victim, slot)
    time.sleep(5)
    stack.restart_node(victim)
    until("the old primary to rejoin as a replica", 60, lambda: _replica_linked(victim.port))
    fault.note("old primary restarted, rejoined as a replica and synced")
    return fault


def pause_primary(stack: Stack, shards: int, seconds: float) -> Fault:
    """SIGSTOP of a primary for longer than the node timeout, then SIGCONT: a replica takes
    over meanwhile and the old primary comes back as its replica."""
    victim, slot = busiest_primary(stack, shards)
    fault = Fault(f"primary paused (SIGSTOP {seconds:g} s)", f"valkey {HOST}:{victim.port}")
    fault.started = time.time()
    victim.proc.signal(signal.SIGSTOP)
    try:
        _wait_failover(stack, fault, victim, slot)
        time.sleep(max(0.0, fault.started + seconds - time.time()))
    finally:
        victim.proc.signal(signal.SIGCONT)
    fault.note("old primary resumed (SIGCONT)")
    until("the paused primary to rejoin as a replica", 60, lambda: _replica_linked(victim.port))
    fault.note("old primary is a synced replica")
    return fault


def kill_gateway(stack: Stack, index: int, down_seconds: float) -> Fault:
    """kill -9 of a gateway; started again on its port after ``down_seconds`` (a restart)."""
    proc, port = stack.gateways[index]
    fault = Fault("gateway killed (kill -9)", f"pushgate serve :{port}", time.time())
    proc.signal(signal.SIGKILL)
    time.sleep(down_seconds)
    stack.gateways[index] = stack.start_gateway(index + 1, port)
    fault.recovered = time.time()
    fault.note(f"restarted after {down_seconds:g} s and ready")
    return fault


def kill_worker(stack: Stack, index: int, down_seconds: float) -> Fault:
    """kill -9 of a worker (its unacknowledged jobs are reclaimed by the other one);
    started again after ``down_seconds``."""
    proc, port = stack.workers[index]
    fault = Fault("worker killed (kill -9)", f"pushgate worker :{port}", time.time())
    proc.signal(signal.SIGKILL)
    time.sleep(down_seconds)
    stack.workers[index] = stack.start_worker(index + 1, port)
    until("the worker ready", 30, lambda: http_status(f"http://{HOST}:{port}/readyz") == 200)
    fault.recovered = time.time()
    fault.note(f"restarted after {down_seconds:g} s and ready")
    return fault
