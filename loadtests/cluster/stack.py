"""The processes of the cluster rig, each started as a child and stopped by its PID: six
Valkey cluster nodes, the APNs and FCM stand-ins, three ``pushgate serve`` behind HAProxy, two
``pushgate worker``. Loopback only; every wait is bounded."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

from pushgate.embedded import cluster_node_args, find_server_binary, form_cluster, free_port

HOST = "127.0.0.1"
STOP_SECONDS = 10.0


class RigError(RuntimeError):
    """Something the rig waited for did not happen in time."""


def until(what: str, seconds: float, check: Callable[[], bool], every: float = 0.1) -> None:
    """Poll ``check`` until it is true; RigError after ``seconds``."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except (OSError, ValueError):
            pass
        time.sleep(every)
    raise RigError(f"timed out after {seconds:g} s waiting for {what}")


def http_status(url: str, context: ssl.SSLContext | None = None) -> int | None:
    """The status of ``GET url`` (None when nothing answers)."""
    try:
        with urllib.request.urlopen(url, timeout=2, context=context) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)
    except OSError:
        return None


def port_pair() -> int:
    """A free port whose cluster bus port (+10000) is free too."""
    for _ in range(200):
        port = free_port()
        if port + 10000 > 65535:
            continue
        with socket.socket() as probe:
            try:
                probe.bind((HOST, port + 10000))
            except OSError:
                continue
        return port
    raise RigError("no free port pair for a cluster node")


@dataclass
class Proc:
    """One child process; output goes to ``logs/<name>.log``."""

    name: str
    argv: list[str]
    env: dict[str, str]
    log: Path
    cwd: Path
    popen: subprocess.Popen[bytes] | None = None

    def start(self) -> Proc:
        with self.log.open("ab") as out:
            self.popen = subprocess.Popen(
                self.argv, env=self.env, cwd=self.cwd, stdin=subprocess.DEVNULL,
                stdout=out, stderr=subprocess.STDOUT,
            )  # fmt: skip
        return self

    @property
    def pid(self) -> int:
        assert self.popen is not None
        return self.popen.pid

    @property
    def running(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def signal(self, signum: int) -> None:
        if self.running:
            os.kill(self.pid, signum)

    def stop(self) -> None:
        """SIGCONT (a paused process cannot stop), SIGTERM, SIGKILL after 10 s; reaped."""
        if self.popen is None:
            return
        if self.running:
            self.signal(signal.SIGCONT)
            self.signal(signal.SIGTERM)
            try:
                self.popen.wait(STOP_SECONDS)
            except subprocess.TimeoutExpired:
                self.signal(signal.SIGKILL)
        self.popen.wait(STOP_SECONDS)


@dataclass
class Node:
    """One Valkey cluster node (its data directory keeps ``nodes.conf`` across restarts)."""

    port: int
    proc: Proc

    @property
    def url(self) -> str:
        return f"redis://{HOST}:{self.port}/0"


@dataclass
class Stack:
    """Everything the rig started, newest last."""

    work: Path
    logs: Path
    app_python: str
    procs: list[Proc] = field(default_factory=list)
    nodes: list[Node] = field(default_factory=list)
    gateways: list[tuple[Proc, int]] = field(default_factory=list)
    workers: list[tuple[Proc, int]] = field(default_factory=list)
    standins: dict[str, dict[str, Any]] = field(default_factory=dict)
    haproxy_port: int = 0
    env: dict[str, str] = field(default_factory=dict)
    cpu: dict[int, tuple[str, float]] = field(default_factory=dict)  # pid -> (role, seconds)

    def sample_cpu(self) -> None:
        """Remember each running process's CPU time (a killed one keeps its last sample)."""
        for proc in self.procs:
            if proc.running:
                with contextlib.suppress(psutil.Error):
                    times = psutil.Process(proc.pid).cpu_times()
                    role = proc.name.split("-")[0]
                    self.cpu[proc.pid] = (role, times.user + times.system)

    def cpu_by_role(self) -> dict[str, float]:
        """CPU seconds per role (valkey, gateway, worker, haproxy, apns, fcm, locust)."""
        totals: dict[str, float] = {}
        for role, seconds in self.cpu.values():
            totals[role] = totals.get(role, 0.0) + seconds
        return {role: round(seconds, 1) for role, seconds in sorted(totals.items())}

    def idle_until(self, moment: float) -> None:
        """Sleep until ``moment`` (epoch seconds), sampling CPU times every second."""
        while (left := moment - time.time()) > 0:
            self.sample_cpu()
            time.sleep(min(1.0, left))

    def spawn(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> Proc:
        proc = Proc(name, argv, env or self.env, self.logs / f"{name}.log", self.work).start()
        self.procs.append(proc)
        return proc

    def stop_all(self) -> None:
        """Stop every process by its PID, newest first."""
        for proc in reversed(self.procs):
            proc.stop()

    # -- Valkey cluster ---------------------------------------------------------------------

    def start_cluster(self, primaries: int, replicas: int, node_timeout_ms: int) -> None:
        binary = find_server_binary()
        for index in range(primaries * (replicas + 1)):
            port = port_pair()
            data = self.work / f"node-{port}"
            data.mkdir()
            argv = [
                binary, "--bind", HOST, "--port", str(port), "--dir", str(data),
                "--save", "", "--appendonly", "no", "--protected-mode", "yes",
                "--daemonize", "no", "--loglevel", "notice",
                *cluster_node_args(node_timeout_ms),
            ]  # fmt: skip
            self.nodes.append(Node(port, self.spawn(f"valkey-{index}", argv, dict(os.environ))))
        for node in self.nodes:
            until(f"valkey on {node.port}", 10, lambda n=node: _pings(n.port))
        form_cluster([n.port for n in self.nodes], replicas=replicas)

    def restart_node(self, node: Node) -> None:
        """Start a killed node again on its port and data directory: it rejoins the cluster
        (as a replica of whoever took over its slots)."""
        node.proc = self.spawn(node.proc.name + "-again", node.proc.argv, node.proc.env)
        until(f"valkey on {node.port} again", 10, lambda: _pings(node.port))

    # -- pushgate and friends ---------------------------------------------------------------

    def start_standins(self) -> None:
        for service in ("apns", "fcm"):
            state = self.work / f"{service}-standin"
            argv = [self.app_python, "-m", "pusher.standins", service, "--state-dir", str(state)]
            proc = self.spawn(f"{service}-standin", argv, dict(os.environ))
            until(f"the {service} stand-in", 30, lambda p=proc: _json_line(p.log) is not None)
            self.standins[service] = _json_line(proc.log) or {}

    def pushgate(self, name: str, *args: str, **settings: str) -> Proc:
        env = {**self.env, **{f"PUSHGATE_{k.upper()}": v for k, v in settings.items()}}
        return self.spawn(name, [self.app_python, "-m", "pushgate.cli", *args], env)

    def start_gateway(self, index: int, port: int | None = None) -> tuple[Proc, int]:
        port = port or free_port()
        proc = self.pushgate(f"gateway-{index}", "serve", "--port", str(port))
        until(f"gateway {index}", 60, lambda: http_status(f"http://{HOST}:{port}/readyz") == 200)
        return proc, port

    def start_worker(self, index: int, port: int | None = None) -> tuple[Proc, int]:
        port = port or free_port()
        proc = self.pushgate(f"worker-{index}", "worker", worker_metrics_port=str(port))
        until(f"worker {index}", 60, lambda: http_status(f"http://{HOST}:{port}/healthz") == 200)
        return proc, port

    def start_haproxy(self, binary: str) -> None:
        config = self.work / "haproxy.cfg"
        config.write_text(haproxy_config(self.haproxy_port, [p for _, p in self.gateways]))
        check = subprocess.run([binary, "-c", "-f", str(config)], capture_output=True, text=True)
        if check.returncode != 0:
            raise RigError(f"haproxy refused its configuration:\n{check.stdout}{check.stderr}")
        self.spawn("haproxy", [binary, "-db", "-f", str(config)], dict(os.environ))
        until(
            "haproxy", 30, lambda: http_status(f"http://{HOST}:{self.haproxy_port}/readyz") == 200
        )

    def cli(self, *args: str) -> dict[str, Any]:
        done = subprocess.run(
            [self.app_python, "-m", "pushgate.cli", *args],
            env=self.env, cwd=self.work, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        if done.returncode != 0:
            raise RigError(f"pushgate {' '.join(args)} failed: {done.stderr}")
        reply: dict[str, Any] = json.loads(done.stdout)
        return reply

    def standin_received(self, service: str) -> list[dict[str, Any]]:
        info = self.standins[service]
        context = ssl.create_default_context(cafile=info["ca_file"])
        url = f"{info['url']}/_standin/received"
        with urllib.request.urlopen(url, timeout=30, context=context) as resp:
            records: list[dict[str, Any]] = json.load(resp)["received"]
        return records


def haproxy_config(port: int, gateways: list[int]) -> str:
    """HAProxy in front of the gateways: health checks on /readyz every second (down after two
    misses), websockets passed through (HTTP mode handles the Upgrade), least connections, a
    request that finds its gateway refusing connections tried once more on another one."""
    servers = "\n".join(
        f"    server gw{i} {HOST}:{p} check inter 1s fall 2 rise 2"
        for i, p in enumerate(gateways, start=1)
    )
    return f"""global
    maxconn 5000

defaults
    mode http
    option redispatch
    retries 2
    timeout connect 2s
    timeout client 90s
    timeout server 90s
    timeout tunnel 120s
    timeout client-fin 5s
    timeout server-fin 5s

frontend pushgate
    bind {HOST}:{port}
    default_backend gateways

backend gateways
    balance leastconn
    option httpchk GET /readyz
    http-check expect status 200
{servers}
"""


def _pings(port: int) -> bool:
    with socket.create_connection((HOST, port), timeout=0.5) as sock:
        sock.sendall(b"PING\r\n")
        return sock.recv(16).startswith(b"+PONG")


def _json_line(path: Path) -> dict[str, Any] | None:
    for line in path.read_text(errors="replace").splitlines():
        if line.startswith("{") and '"port"' in line:
            found: dict[str, Any] = json.loads(line)
            return found
    return None


def python_of_repo(repo: Path) -> str:
    """The interpreter the rig and the pushgate processes run with."""
    return os.environ.get("LOADTEST_APP_PYTHON") or sys.executable
