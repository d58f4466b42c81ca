"""How long and how big each benchmark runs: the full profile and the ``--quick`` smoke run."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Profile:
    name: str
    load_users: int  # users with an in-app device, for create load and idle sockets
    push_users: int  # users per push provider (one device each)
    latency_users: int  # users whose devices answer in latency samples
    rounds: int  # A/B rounds per throughput ratio
    seconds: float  # one wrk run
    warmup_seconds: float
    connections: int  # wrk connections
    latency_samples: int  # sequential samples per latency figure
    push_backlog: int  # jobs per provider for the sends/s drain
    e2e_rate: float  # creates/s while measuring create -> stand-in latency
    e2e_seconds: float
    socket_steps: tuple[int, ...]  # idle socket counts for P4
    socket_processes: int  # client processes holding idle sockets
    redis_ops: int  # commands per P2 run
    surge_sockets: int  # portal websockets that open and drop in the memory-after-surge run
    surge_after_seconds: float  # when RSS is read again after they dropped
    p5_runs: int  # create runs with the idle sockets open (each one a P5 ratio)
    expiry_challenges: int  # P7: challenges left to expire while the idle sockets are open


FULL = Profile(
    name="full",
    load_users=600,
    push_users=150,
    latency_users=4,
    rounds=3,
    seconds=10,
    warmup_seconds=3,
    connections=64,
    latency_samples=400,
    push_backlog=5_000,
    e2e_rate=100,
    e2e_seconds=10,
    socket_steps=(5_000, 15_000),
    socket_processes=3,
    redis_ops=60_000,
    surge_sockets=5_000,
    surge_after_seconds=60,
    p5_runs=3,
    expiry_challenges=1_000,
)

QUICK = Profile(
    name="quick",
    load_users=150,
    push_users=30,
    latency_users=2,
    rounds=1,
    seconds=3,
    warmup_seconds=1,
    connections=64,
    latency_samples=60,
    push_backlog=1_500,
    e2e_rate=50,
    e2e_seconds=3,
    socket_steps=(500, 1_500),
    socket_processes=2,
    redis_ops=10_000,
    surge_sockets=1_000,
    surge_after_seconds=10,
    p5_runs=1,
    expiry_challenges=100,
)
