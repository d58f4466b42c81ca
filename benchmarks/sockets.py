"""Idle websocket holders: client processes that keep many websockets open.

Run as ``python -m benchmarks.sockets URLS_FILE [--wait-frame]``: opens one websocket per
line of URLS_FILE (answering the server's pings, never sending), prints one JSON line
``{"opened", "failed", "seconds"}``, then answers ``status`` lines on stdin with
``{"open": n}`` and closes everything when stdin ends. Client sockets live in these
processes, so their memory never counts against the server's.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import uvloop

from benchmarks import procs


async def _hold(urls: list[str], wait_frame: bool, concurrency: int) -> None:
    gate = asyncio.Semaphore(concurrency)
    opened: set[aiohttp.ClientWebSocketResponse] = set()
    failed: list[str] = []
    ready: list[asyncio.Future[None]] = []
    connector = aiohttp.TCPConnector(limit=0, force_close=True)
    session = aiohttp.ClientSession(connector=connector)

    async def one(url: str, done: asyncio.Future[None]) -> None:
        try:
            async with gate:
                ws = await session.ws_connect(url, heartbeat=None, autoping=True)
                if wait_frame:
                    await ws.receive()
        except Exception as exc:  # counted and reported
            failed.append(repr(exc))
            done.set_result(None)
            return
        opened.add(ws)
        done.set_result(None)
        async for _ in ws:
            pass
        opened.discard(ws)

    loop = asyncio.get_running_loop()
    started = time.perf_counter()
    tasks = []
    for url in urls:
        done: asyncio.Future[None] = loop.create_future()
        ready.append(done)
        tasks.append(asyncio.create_task(one(url, done)))
    await asyncio.gather(*ready)
    report = {
        "opened": len(opened),
        "failed": len(failed),
        "errors": sorted(set(failed))[:3],
        "seconds": round(time.perf_counter() - started, 2),
    }
    sys.stdout.write(json.dumps(report) + "\n")
    sys.stdout.flush()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while line := await reader.readline():
        if line.strip() == b"status":
            sys.stdout.write(json.dumps({"open": len(opened)}) + "\n")
            sys.stdout.flush()
    for ws in list(opened):
        await ws.close()
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    await session.close()


class Holders:
    """Parent side: start holder processes over a list of URLs and stop them."""

    def __init__(self, workdir: Path, cpus: set[int] | None) -> None:
        self.workdir = workdir
        self.cpus = cpus
        self.procs: list[subprocess.Popen[bytes]] = []

    def open(self, urls: list[str], processes: int, *, wait_frame: bool) -> dict[str, object]:
        """Open ``urls`` spread over ``processes`` new holders; block until all tried."""
        batch: list[subprocess.Popen[bytes]] = []
        for k in range(processes):
            part = urls[k::processes]
            if not part:
                continue
            path = self.workdir / f"urls-{len(self.procs) + len(batch)}.txt"
            path.write_text("\n".join(part) + "\n")
            argv = [procs.PYTHON, "-m", "benchmarks.sockets", str(path)]
            if wait_frame:
                argv.append("--wait-frame")
            batch.append(
                procs.spawn(
                    argv,
                    cpus=self.cpus,
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    log=self.workdir / "holders.err",
                )
            )
        self.procs.extend(batch)
        reports = [json.loads(_readline(p)) for p in batch]
        return {
            "opened": sum(r["opened"] for r in reports),
            "failed": sum(r["failed"] for r in reports),
            "errors": [e for r in reports for e in r["errors"]][:3],
            "seconds": max(r["seconds"] for r in reports),
        }

    def open_count(self) -> int:
        """How many sockets the holders still have open."""
        total = 0
        for proc in self.procs:
            assert proc.stdin is not None
            proc.stdin.write(b"status\n")
            proc.stdin.flush()
            total += int(json.loads(_readline(proc))["open"])
        return total

    def close(self) -> None:
        for proc in self.procs:
            if proc.stdin is not None:
                proc.stdin.close()
        for proc in self.procs:
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                procs.stop(proc)
        self.procs.clear()


def _readline(proc: subprocess.Popen[bytes]) -> str:
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line:
        raise RuntimeError(f"socket holder {proc.pid} exited ({proc.poll()})")
    return line.decode()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("urls_file", type=Path)
    parser.add_argument("--wait-frame", action="store_true")
    parser.add_argument("--concurrency", type=int, default=64)
    args = parser.parse_args()
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    urls = [u for u in args.urls_file.read_text().splitlines() if u]
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(_hold(urls, args.wait_frame, args.concurrency))


if __name__ == "__main__":
    main()
