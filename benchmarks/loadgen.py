"""Closed-loop HTTP load with wrk (C, epoll): the same generator for every route.

Every request is a ``POST`` with a challenge-create body; user ids go round-robin over a
pool and each resource id is unique, so the create route never deduplicates. The
hello-world route gets byte-for-byte the same kind of request.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from benchmarks import procs
from benchmarks.stack import CONTEXT

MARK = "WRKJSON "

_SCRIPT = r"""
local users = {%(users)s}
local n = #users
local nthreads = %(threads)d
local path = "%(path)s"
local headers = {["Authorization"] = "Bearer %(key)s", ["Content-Type"] = "application/json"}
local ctx = '%(context)s'
local threads = {}
tid = 0
local counter = 0

function setup(thread)
  thread:set("tid", #threads)
  table.insert(threads, thread)
end

function request()
  counter = counter + 1
  local u = users[((counter - 1) * nthreads + tid) %% n + 1]
  local body = string.format(
    '{"user_id":"%%s","resource":"%(tag)s-%%d-%%d","app_name":"Salesforce","context":%%s}',
    u, tid, counter, ctx)
  return wrk.format("POST", path, headers, body)
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '%(mark)s{"requests":%%d,"duration_us":%%d,"bytes":%%d,' ..
    '"errors":{"connect":%%d,"read":%%d,"write":%%d,"status":%%d,"timeout":%%d},' ..
    '"latency_ms":{"p50":%%.3f,"p90":%%.3f,"p99":%%.3f,"mean":%%.3f,"max":%%.3f}}\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50) / 1000, latency:percentile(90) / 1000,
    latency:percentile(99) / 1000, latency.mean / 1000, latency.max / 1000))
end
"""


@dataclass(frozen=True)
class LoadResult:
    """What one wrk run measured."""

    requests: int
    seconds: float
    errors: dict[str, int]
    latency_ms: dict[str, float]

    @property
    def rate(self) -> float:
        return self.requests / self.seconds

    @property
    def failed(self) -> int:
        return sum(self.errors.values())

    def to_json(self) -> dict[str, object]:
        return {
            "requests": self.requests,
            "seconds": round(self.seconds, 3),
            "rate": round(self.rate, 1),
            "errors": self.errors,
            "latency_ms": self.latency_ms,
        }


def wrk_binary() -> str:
    found = shutil.which("wrk")
    if found is None:
        raise RuntimeError("wrk is not installed (Debian: apt-get install -y wrk)")
    return found


def wrk_version() -> str:
    out = subprocess.run([wrk_binary(), "-v"], capture_output=True, text=True, check=False)
    return (out.stdout or out.stderr).splitlines()[0].strip()


def run_wrk(
    url: str,
    path: str,
    api_key: str,
    users: list[str],
    *,
    tag: str,
    seconds: float,
    connections: int,
    threads: int,
    cpus: set[int] | None,
) -> LoadResult:
    """Run wrk against ``url + path`` for ``seconds`` and parse its summary."""
    script = _SCRIPT % {
        "users": ",".join(json.dumps(u) for u in users),
        "threads": threads,
        "path": path,
        "key": api_key,
        "context": json.dumps(CONTEXT, separators=(",", ":")),
        "tag": tag,
        "mark": MARK,
    }
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as handle:
        handle.write(script)
        script_path = Path(handle.name)
    try:
        argv = [
            wrk_binary(),
            f"-t{threads}",
            f"-c{connections}",
            f"-d{max(1, round(seconds))}s",
            "--timeout", "5s",
            "-s", str(script_path),
            url + path,
        ]  # fmt: skip
        proc = procs.spawn(argv, cpus=cpus, stdout=subprocess.PIPE)
        out, _ = proc.communicate(timeout=seconds + 60)
    finally:
        script_path.unlink(missing_ok=True)
    for line in out.decode().splitlines():
        if line.startswith(MARK):
            data = json.loads(line[len(MARK) :])
            return LoadResult(
                requests=int(data["requests"]),
                seconds=data["duration_us"] / 1e6,
                errors={k: int(v) for k, v in data["errors"].items() if v},
                latency_ms={k: round(float(v), 3) for k, v in data["latency_ms"].items()},
            )
    raise RuntimeError(f"wrk printed no summary: {out.decode()[-2000:]}")
