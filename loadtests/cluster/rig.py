"""The cluster rig: pushgate as a large deployment runs it, on this machine, under locust,
with faults injected during the run and a report of what each one did.

Started by ``loadtests/cluster/run.sh`` (see ``loadtests/README.md``). Starts a six-node Valkey
cluster (three primaries, three replicas), the APNs and FCM stand-ins, three ``pushgate
serve`` behind HAProxy and two ``pushgate worker``; seeds two tenants; runs the load-test users
through HAProxy; kills a primary, a gateway and a worker and pauses a primary along the way;
then reads back every challenge, audit event and accepted prompt and writes
``loadtests/results/cluster/report.md`` (and ``report.json``). Exits 1 when an approval was lost
or applied twice or a waiting portal did not end with the true state.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path[:0] = [str(HERE), str(REPO)]

import faults  # noqa: E402
from analysis import (  # noqa: E402
    FaultWindow,
    Login,
    Prompt,
    Request,
    broken_promises,
    fault_report,
    render,
)
from redis.cluster import RedisCluster  # noqa: E402
from stack import HOST, RigError, Stack  # noqa: E402

from approvals.ids import shard_of  # noqa: E402
from approvals.store import keys  # noqa: E402
from pushgate.embedded import free_port  # noqa: E402

SHARDS_DEFAULT = 128  # the PUSHGATE_SHARDS default
FAULTS: dict[str, Callable[[Stack, argparse.Namespace], faults.Fault]] = {
    "primary-kill": lambda s, a: faults.kill_primary(s, a.shards),
    "gateway-kill": lambda s, a: faults.kill_gateway(s, 0, 10),
    "worker-kill": lambda s, a: faults.kill_worker(s, 0, 10),
    "primary-pause": lambda s, a: faults.pause_primary(s, a.shards, 3 * a.node_timeout_ms / 1000),
}


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="loadtests/cluster/run.sh", description=__doc__)
    parser.add_argument("-t", "--duration", type=int, default=240, help="seconds of load")
    parser.add_argument("-u", "--users", type=int, default=44)
    parser.add_argument(
        "--devices", type=int, default=20, help="phone users (portals: the rest but 4)"
    )
    parser.add_argument("-r", "--spawn-rate", type=int, default=10)
    parser.add_argument("--faults", default=",".join(FAULTS), help="comma list, in order")
    parser.add_argument("--warmup", type=int, default=40, help="seconds before the first fault")
    parser.add_argument("--node-timeout-ms", type=int, default=2000)
    parser.add_argument("--shards", type=int, default=SHARDS_DEFAULT)
    parser.add_argument("--locust", required=True, help="the locust executable")
    parser.add_argument("--haproxy", default=shutil.which("haproxy") or "haproxy")
    args = parser.parse_args(argv)
    unknown = set(args.faults.split(",")) - set(FAULTS) - {""}
    if unknown:
        parser.error(f"unknown faults: {', '.join(sorted(unknown))}")
    return args


def stack_env(
    haproxy_port: int, standins: dict[str, dict[str, Any]], redis_url: str
) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PUSHGATE_")}
    apns, fcm = standins["apns"], standins["fcm"]
    env.update(
        PUSHGATE_REDIS_URL=redis_url,
        PUSHGATE_REDIS_CLUSTER="true",
        PUSHGATE_SECRET_KEY=base64.b64encode(os.urandom(32)).decode(),
        PUSHGATE_HOST=HOST,
        PUSHGATE_PUBLIC_URL=f"http://{HOST}:{haproxy_port}",
        PUSHGATE_WEBAUTHN_RP_ID="localhost",
        PUSHGATE_WEBAUTHN_ORIGINS=f"http://localhost:{haproxy_port}",
        PUSHGATE_LOG_LEVEL=os.environ.get("LOADTEST_LOG_LEVEL", "info"),
        PUSHGATE_DRAIN_SECONDS="5",
        PUSHGATE_WORKER_RECLAIM_IDLE_MS="10000",
        PUSHGATE_APNS_KEY_FILE=apns["key_file"],
        PUSHGATE_APNS_KEY_ID=apns["key_id"],
        PUSHGATE_APNS_TEAM_ID=apns["team_id"],
        PUSHGATE_APNS_TOPIC="com.example.pushgate",
        PUSHGATE_APNS_ENDPOINT=apns["url"],
        PUSHGATE_APNS_CA_FILE=apns["ca_file"],
        PUSHGATE_FCM_CREDENTIALS_FILE=fcm["service_account_file"],
        PUSHGATE_FCM_PROJECT_ID=fcm["project_id"],
        PUSHGATE_FCM_ENDPOINT=fcm["url"],
        PUSHGATE_FCM_CA_FILE=fcm["ca_file"],
    )
    return env


def start(stack: Stack, args: argparse.Namespace) -> dict[str, Any]:
    """Bring everything up; returns the seed the locust users read."""
    print("== six-node Valkey cluster (3 primaries, 3 replicas)", flush=True)
    stack.start_cluster(3, 1, args.node_timeout_ms)
    print("== APNs and FCM stand-ins", flush=True)
    stack.start_standins()
    stack.haproxy_port = free_port()
    stack.env = stack_env(stack.haproxy_port, stack.standins, stack.nodes[0].url)
    stack.env["PUSHGATE_SHARDS"] = str(args.shards)
    print("== three gateways, HAProxy, two workers", flush=True)
    stack.gateways = [stack.start_gateway(i + 1) for i in range(3)]
    stack.start_haproxy(args.haproxy)
    stack.workers = [stack.start_worker(i + 1) for i in range(2)]
    print("== seeding tenants", flush=True)
    seed: dict[str, Any] = {
        "origin": f"http://localhost:{stack.haproxy_port}",
        "rp_id": "localhost",
        "platforms": ["apns", "fcm", "none"],
        "apns_topic": "com.example.pushgate",
    }
    for role, name in (("load", "loadtest"), ("bomb", "push-bomb-target")):
        tenant = stack.cli("tenant", "create", name)
        portal = stack.cli("apikey", "create", tenant["tenant_id"], "--role", "portal")
        seed[role] = {
            "tenant_id": tenant["tenant_id"],
            "admin_key": tenant["admin_key"],
            "portal_key": portal["api_key"],
        }
    return seed


def run_load(
    stack: Stack, args: argparse.Namespace, results: Path, seed: dict[str, Any]
) -> list[faults.Fault]:
    """Run locust through HAProxy and inject the faults on schedule; returns what they did."""
    (stack.work / "seed.json").write_text(json.dumps(seed))
    env = {
        **os.environ,
        "LOADTEST_SEED": str(stack.work / "seed.json"),
        "LOADTEST_LEDGER": str(results / "ledger.jsonl"),
        "LOADTEST_REQUEST_LOG": str(results / "requests.jsonl"),
        # one portal per phone, so ordinary logins stay under the fatigue cap
        "LOADTEST_DEVICES": str(args.devices),
        # this run is judged per fault by the rig, not by the single-stack thresholds
        "LOADTEST_MAX_ERROR_RATE": "1",
        "LOADTEST_MAX_P99_CREATE_MS": "1000000",
        "LOADTEST_MAX_P99_APPROVE_TO_RESULT_MS": "1000000",
    }
    argv = [
        args.locust, "-f", str(HERE / "users.py"), "--headless",
        "--host", f"http://{HOST}:{stack.haproxy_port}", "-u", str(args.users),
        "-r", str(args.spawn_rate), "-t", f"{args.duration}s", "--stop-timeout", "10",
        "--csv", str(results / "run"), "--html", str(results / "report.html"),
        "--only-summary", "--loglevel", "WARNING",
    ]  # fmt: skip
    print(f"== locust: {args.users} users for {args.duration} s through HAProxy", flush=True)
    locust = stack.spawn("locust", argv, env)
    started = time.time()
    chosen = [f for f in args.faults.split(",") if f]
    gap = (args.duration - args.warmup - 20) / max(1, len(chosen))
    done: list[faults.Fault] = []
    for index, name in enumerate(chosen):
        due = started + args.warmup + index * gap
        stack.idle_until(due)
        stack.sample_cpu()
        if not locust.running:
            raise RigError("locust ended before the faults were done")
        print(f"== fault {index + 1}/{len(chosen)}: {name}", flush=True)
        fault = FAULTS[name](stack, args)
        print("   " + "; ".join(fault.notes), flush=True)
        done.append(fault)
    assert locust.popen is not None
    deadline = started + args.duration + 120
    while locust.running and time.time() < deadline:
        stack.idle_until(min(deadline, time.time() + 1))
    if locust.running:
        raise RigError("locust did not end in time")
    stack.sample_cpu()
    return done


def read_back(
    stack: Stack, ledger: list[dict[str, Any]], tenant: str
) -> tuple[dict[str, dict[str, str]], Counter[str]]:
    """Final challenge records and ``challenge.approved`` events per challenge, from Redis."""
    live = next(n for n in stack.nodes if n.proc.running)
    client = RedisCluster(
        host=HOST, port=live.port, decode_responses=True, require_full_coverage=False
    )
    try:
        finals: dict[str, dict[str, str]] = {}
        for entry in ledger:
            shard = shard_of(entry["id"], int(stack.env["PUSHGATE_SHARDS"]))
            if shard is not None:
                finals[entry["id"]] = client.hgetall(keys.challenge(shard, entry["id"]))
        approvals: Counter[str] = Counter()
        after = "-"
        for _ in range(10_000):
            page = client.xrange(keys.tenant_events(tenant), after, "+", count=1000)
            for entry_id, fields in page:
                if fields.get("type") == "challenge.approved":
                    approvals[fields.get("challenge_id", "")] += 1
                after = f"({entry_id}"
            if len(page) < 1000:
                break
        return finals, approvals
    finally:
        client.close()


def prompts_of(records: list[dict[str, Any]]) -> list[Prompt]:
    """Prompts (not follow-ups) a stand-in accepted."""
    found = []
    for record in records:
        if record.get("status") != 200:
            continue
        payload = record["payload"]
        if "aps" in payload:
            follow_up, cid = "status" in payload, record["headers"].get("apns-collapse-id", "")
        else:
            data = payload.get("message", {}).get("data", {})
            follow_up, cid = "status" in data, data.get("challenge_id", "")
        if not follow_up:
            found.append(Prompt(cid, record["token"], float(record["at"])))
    return found


def _per(seconds: float, count: int) -> float:
    return round(seconds * 1000 / count, 2) if count else 0.0


def load_jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def report(
    stack: Stack,
    args: argparse.Namespace,
    results: Path,
    seed: dict[str, Any],
    done: list[faults.Fault],
    argv: list[str],
) -> int:
    ledger = load_jsonl(results / "ledger.jsonl")
    requests = [
        Request(
            r["t"],
            r["name"],
            r["ms"],
            r["ok"],
            r.get("status"),
            r.get("retry_after", False),
            r.get("type", ""),
        )
        for r in load_jsonl(results / "requests.jsonl")
    ]
    finals, approvals = read_back(stack, ledger, seed["load"]["tenant_id"])
    logins = []
    for entry in ledger:
        final = finals.get(entry["id"]) or {}
        logins.append(
            Login(
                entry["id"], entry["created_at"], entry.get("decision"),
                tuple(entry.get("answer_statuses", [])), entry.get("told"),
                final.get("status"),
                int(final["decided_at"]) / 1000 if final.get("decided_at") else None,
                int(final["expires_at"]) / 1000 if final.get("expires_at") else None,
            )
        )  # fmt: skip
    prompts = prompts_of(stack.standin_received("apns")) + prompts_of(stack.standin_received("fcm"))
    windows = [FaultWindow(f.name, f.target, f.started, f.recovered, f.notes) for f in done]
    ends = [w.started for w in windows[1:]] + [max((r.t for r in requests), default=time.time())]
    reports = [
        fault_report(w, end, requests, logins, approvals, prompts)
        for w, end in zip(windows, ends, strict=True)
    ]
    broken = broken_promises(reports)
    summary = (
        json.loads((results / "run_summary.json").read_text())
        if (results / "run_summary.json").exists()
        else {}
    )
    judged = [r for r in requests if r.kind != "SECURITY"]
    overall = {
        "logins": len(logins),
        "requests": len(judged),
        "failed": sum(not r.ok for r in judged),
        "security_violations": len(summary.get("security_violations", [])),
        "push_bomb": summary.get("push_bomb", {}),
        "prompts_accepted": len(prompts),
        "cpu_seconds": stack.cpu_by_role(),
    }
    cpu = overall["cpu_seconds"]
    per = {
        "gateway_ms_per_request": _per(cpu.get("gateway", 0), len(judged)),
        "gateway_ms_per_login": _per(cpu.get("gateway", 0), len(logins)),
        "worker_ms_per_prompt": _per(cpu.get("worker", 0), len(prompts)),
        "valkey_ms_per_login": _per(cpu.get("valkey", 0), len(logins)),
        "haproxy_ms_per_request": _per(cpu.get("haproxy", 0), len(judged)),
    }
    overall["cpu_per_unit"] = per
    shown = [a for i, a in enumerate(argv) if a != "--locust" and argv[i - 1 : i] != ["--locust"]]
    command = " ".join(["loadtests/cluster/run.sh", *shown])
    machine = f"{os.cpu_count()} CPUs, {platform.platform()}, Python {platform.python_version()}"
    run = (
        f"{args.users} users for {args.duration} s, cluster-node-timeout {args.node_timeout_ms}"
        f" ms, {args.shards} shards, 3 gateways behind HAProxy, 2 workers"
    )
    totals = (
        f"{overall['logins']} logins, {overall['requests']} requests, {overall['failed']}"
        f" failed, {overall['prompts_accepted']} prompts accepted,"
        f" {overall['security_violations']} security violations"
    )
    cpu_line = ", ".join(f"{role} {seconds} s" for role, seconds in cpu.items())
    per_line = ", ".join(f"{name.replace('_', ' ')} {value}" for name, value in per.items())
    text = [
        "# Cluster rig report",
        "",
        f"Command: `{command}`  ",
        f"Machine: {machine}  ",
        f"Run: {run}  ",
        f"Overall: {totals}  ",
        f"CPU time by process kind: {cpu_line}  ",
        f"CPU per unit of work (ms): {per_line}",
        "",
        render(reports),
        "Promises: " + ("all kept" if not broken else "BROKEN: " + "; ".join(broken)),
        "",
    ]
    (results / "report.md").write_text("\n".join(text))
    (results / "report.json").write_text(
        json.dumps({"overall": overall, "faults": reports, "broken": broken}, indent=2)
    )
    print("\n".join(text), flush=True)
    return 1 if broken or overall["security_violations"] else 0


def main(argv: list[str]) -> int:
    args = parse(argv)
    results = REPO / "loadtests" / "results" / "cluster"
    shutil.rmtree(results, ignore_errors=True)
    (results / "logs").mkdir(parents=True)
    with tempfile.TemporaryDirectory(prefix="pushgate-cluster-rig-") as work:
        stack = Stack(Path(work), results / "logs", sys.executable)
        try:
            seed = start(stack, args)
            done = run_load(stack, args, results, seed)
            return report(stack, args, results, seed, done, argv)
        except RigError as exc:
            print(f"rig: {exc}", file=sys.stderr)
            return 2
        finally:
            print("== stopping every process", flush=True)
            stack.stop_all()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
