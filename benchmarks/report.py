"""The machine description and the Markdown table for ``docs/performance.md``."""

from __future__ import annotations

import os
import platform
import subprocess
from importlib import metadata
from typing import Any

from benchmarks import loadgen, stats


def _lscpu() -> dict[str, str]:
    out = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
    wanted = (
        "Model name",
        "CPU(s)",
        "Thread(s) per core",
        "Hypervisor vendor",
        "L2 cache",
        "L3 cache",
    )
    facts = {}
    for line in out.splitlines():
        name, _, value = line.partition(":")
        if name.strip() in wanted:
            facts[name.strip()] = value.strip()
    return facts


def machine() -> dict[str, Any]:
    """nproc, lscpu highlights, memory, Python and library versions, wrk."""
    try:
        wrk = loadgen.wrk_version()
    except RuntimeError:
        wrk = "missing"
    with open("/proc/meminfo") as handle:
        mem_kib = int(handle.readline().split()[1])
    return {
        "nproc": os.cpu_count(),
        "lscpu": _lscpu(),
        "memory_gib": round(mem_kib / 2**20, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "packages": {
            name: metadata.version(name)
            for name in ("aiohttp", "redis", "uvloop", "structlog", "aioapns", "firebase-admin")
        },
        "wrk": wrk,
    }


def _ok(met: bool) -> str:
    return "met" if met else "**missed**"


def _r(summary: dict[str, Any]) -> str:
    if summary["rounds"] > 1:
        return f"{summary['median']:.3f} ({summary['min']:.3f}–{summary['max']:.3f})"
    return f"{summary['median']:.3f}"


def _p1_rows(p1: dict[str, Any], rtt: dict[str, Any] | None) -> list[str]:
    hello = f"{p1['hello_rate']:,.0f} req/s, {p1['hello_cpu_us']:.0f} µs CPU/req"
    rows = []
    for level, note in (("info", " (default)"), ("warning", "")):
        ratio = p1[f"ratio_{level}"]
        rows.append(
            f"| P1 creates/s ÷ hello-world req/s, log level {level}{note} "
            f"| {p1[f'create_{level}_rate']:,.0f} creates/s, "
            f"{p1[f'create_{level}_cpu_us']:.0f} µs CPU/req | {hello} | {_r(ratio)} "
            f"(CPU: {_r(p1[f'cpu_ratio_{level}'])}) | ≥ 0.20 | {_ok(ratio['median'] >= 0.20)} |"
        )
    if "floor_cpu_ratio" in p1:
        floor = p1["floor_cpu_ratio"]
        rows.append(
            "| P1f create CPU/request ÷ its floor's (same body validated, one EVALSHA of a trivial "
            f"script, same keys and arguments) | {p1['create_info_cpu_us']:.0f} µs CPU/req "
            f"| {p1['floor_create_cpu_us']:.0f} µs CPU/req ({p1['floor_create_rate']:,.0f} req/s) "
            f"| {_r(floor)} | ≤ 1.5 | {_ok(floor['median'] <= 1.5)} |"
        )
    if "ratio_floor_create" in p1:
        rows.append(
            "| P1 ceiling: the P1f floor route ÷ hello-world (what a create route costing no more "
            f"than its floor would reach) | {p1['floor_create_rate']:,.0f} req/s, "
            f"{p1['floor_create_cpu_us']:.0f} µs CPU/req | {hello} "
            f"| {_r(p1['ratio_floor_create'])} (CPU: {_r(p1['cpu_ratio_floor_create'])}) "
            "| (diagnostic) | |"
        )
    if "ratio_hello_redis" in p1:
        rows.append(
            "| P1 floor: hello-world + one redis-py SET ÷ hello-world "
            f"| {p1['hello_redis_rate']:,.0f} req/s, {p1['hello_redis_cpu_us']:.0f} µs CPU/req "
            f"| {hello} | {_r(p1['ratio_hello_redis'])} | (diagnostic) | |"
        )
    if rtt:
        per = ", ".join(f"{v:g} {k.upper()}" for k, v in rtt["per_create"].items())
        rows.append(
            f"| Redis round trips per create (MONITOR) | {per} | | | 1 EVALSHA | "
            f"{_ok(abs(rtt['per_create'].get('evalsha', 0) - 1) < 0.01)} |"
        )
    return rows


def _push_rows(push: dict[str, Any], p1: dict[str, Any] | None) -> list[str]:
    rows = []
    creates = p1["create_info_rate"] if p1 else None
    for name in push.get("providers", []):
        drains, floors = push[f"drain_{name}"], push[f"floor_{name}"]
        rate = stats.median([d["sends_per_second"] for d in drains])
        floor = stats.median([f["sends_per_second"] for f in floors])
        cpu = stats.median([d["worker_cpu_ms_per_send"] for d in drains])
        floor_cpu = stats.median([f["cpu_ms_per_send"] for f in floors])
        ratio = push[f"ratio_{name}"]
        per_create = f"; {rate / creates:.2f} sends per P1 create" if creates else ""
        rows.append(
            f"| Push sends/s ({name.upper()}) ÷ the client library alone "
            f"| {rate:,.0f} sends/s, {cpu:.2f} ms worker CPU/send{per_create} "
            f"| {floor:,.0f} sends/s, {floor_cpu:.2f} ms CPU/send "
            f"| {_r(ratio)} | ≥ 0.8 | {_ok(ratio['median'] >= 0.8)} |"
        )
        trips = push.get(f"round_trips_{name}", {}).get("redis_commands_per_job")
        if trips:
            # CLIENT / HELLO are the fresh worker's connection set-up, not per-job work
            trips = {k: v for k, v in trips.items() if k not in ("client", "hello")}
            total = sum(trips.values())
            top = ", ".join(f"{v:g} {k.upper()}" for k, v in list(trips.items())[:7])
            rows.append(
                f"| Redis commands per push job ({name.upper()}) | {total:.1f} ({top}, …) "
                f"| | | ≤ 5 | {_ok(total <= 5)} |"
            )
    e2e = push.get("e2e_ms")
    if e2e:
        for name in push.get("providers", []):
            lat = e2e[name]
            rows.append(
                f"| Create → {name.upper()} stand-in received, p50 / p99 "
                f"at {e2e['rate']:g} creates/s "
                f"| {lat['p50']:.1f} / {lat['p99']:.1f} ms | | | | |"
            )
    return rows


def _hello_redis(sample: dict[str, Any]) -> str:
    """The floor of the device's request: an HTTP request with one Redis round trip."""
    floor = sample.get("hello_redis_ms")
    if not floor:
        return ""
    return f"POST /hello-redis p50 {floor['p50']:.2f} / p99 {floor['p99']:.2f} ms"


def _idle_rows(idle: dict[str, Any]) -> list[str]:
    rows = []
    raw = idle["raw"]
    for key in sorted(idle["p3"], key=int):
        p3 = idle["p3"][key]
        approve = raw[f"latency_idle_{key}"]
        rows.append(
            f"| P3 approve → portal `result` p99 ÷ websocket echo p99, "
            f"{int(key):,} idle sockets "
            f"| p50 {approve['approve_to_result_ms']['p50']:.2f} / "
            f"p99 {p3['approve_p99_ms']:.2f} ms "
            f"| echo p50 {approve['echo_ms']['p50']:.3f} / p99 {p3['echo_p99_ms']:.3f} ms"
            f"{'; ' + _hello_redis(approve) if 'hello_redis_ms' in approve else ''} "
            f"| {p3['ratio']:.1f} | ≤ 3 | {_ok(p3['ratio'] <= 3)} |"
        )
    for key in sorted(idle["p3"], key=int):
        approve = raw[f"latency_idle_{key}"]
        handler = approve.get("answer_handler_mean_ms", float("nan"))
        response = approve.get("approve_http_response_ms", {}).get("p50", float("nan"))
        rows.append(
            f"| P3h device answer handler, mean (the gateway's own histogram), "
            f"{int(key):,} idle sockets | {handler:.2f} ms "
            f"(answer's HTTP response p50 {response:.2f} ms) | {_hello_redis(approve)} | "
            f"| ≤ 1 ms | {_ok(handler <= 1)} |"
        )
    for key in sorted(idle["p4"], key=int):
        p4 = idle["p4"][key]
        met = p4["ratio"] is not None and p4["ratio"] <= 1.3 and p4["portal_kib_per_socket"] <= 20
        rows.append(
            f"| P4 RSS per idle portal websocket ÷ bare aiohttp websocket, {int(key):,} sockets "
            f"| {p4['portal_kib_per_socket']:.1f} KiB | {p4['bare_kib_per_socket']:.1f} KiB "
            f"| {p4['ratio']:.2f} | ≤ 1.3 and ≤ 20 KiB | {_ok(met)} |"
        )
    p5 = idle["p5"]
    rates = p5["creates_with_sockets"]
    rates = rates if isinstance(rates, list) else [rates]
    ratios = p5.get("ratios") or [p5["ratio"]]
    rows.append(
        f"| P5 creates/s with {p5['idle_sockets']:,} idle portal sockets ÷ with none, "
        f"{len(ratios)} run{'s' if len(ratios) > 1 else ''} "
        f"| {' / '.join(f'{r:,.0f}' for r in rates)} creates/s "
        f"| {p5['creates_none']:,.0f} creates/s (mean of a run before and after) "
        f"| {' / '.join(f'{r:.3f}' for r in ratios)} | ≥ 0.85 in each run "
        f"| {_ok(min(ratios) >= 0.85)} |"
    )
    p7 = idle.get("p7")
    if p7:
        late = p7["after_expiry_ms"]
        rows.append(
            f"| P7 challenges whose portal websocket gets `expired` within TTL + "
            f"{p7['grace_seconds']:g} s, {p7['challenges']:,} challenges (TTL "
            f"{p7['ttl_seconds']} s), {p5['idle_sockets']:,} idle sockets "
            f"| {p7['expired_within_grace']:,} of {p7['challenges']:,} "
            f"(`result` after `expires_at`: p50 {late['p50']:.0f} / p99 {late['p99']:.0f} / "
            f"max {late['max']:.0f} ms) | | {p7['fraction']:.1%} | 100 % "
            f"| {_ok(p7['fraction'] >= 1)} |"
        )
    return rows


def _p2_rows(p2: dict[str, Any]) -> list[str]:
    rows = []
    cost = p2.get("server_usec_per_call")
    if cost:
        rows.append(
            f"| Redis's own time per call (INFO commandstats) | EVALSHA {cost['evalsha']:.1f} µs "
            f"| SET {cost['set']:.1f} µs | {cost['set'] / cost['evalsha']:.3f} | | |"
        )
    for kind in ("py", "raw"):
        part = p2[kind]
        rows.append(
            f"| P2 create-script EVALSHA/s ÷ SET/s, {part['client']} "
            f"| {part['evalsha_per_second']:,.0f} EVALSHA/s | {part['set_per_second']:,.0f} SET/s "
            f"| {_r(part['ratio'])} | ≥ 0.6 | {_ok(part['ratio']['median'] >= 0.6)} |"
        )
    return rows


def markdown(results: dict[str, Any]) -> str:
    """The figures table (ratios with their baselines and goals)."""
    rows = [
        "| Figure | Measured | Baseline | Ratio | Goal | Result |",
        "|---|---|---|---|---|---|",
    ]
    p1 = results.get("p1")
    if p1:
        rows += _p1_rows(p1, results.get("round_trips"))
    if results.get("push"):
        rows += _push_rows(results["push"], p1)
    if results.get("idle"):
        rows += _idle_rows(results["idle"])
    if results.get("p2"):
        rows += _p2_rows(results["p2"])
    if results.get("surge"):
        rows += _surge_rows(results["surge"])
    return "\n".join(rows)


def _surge_rows(surge: dict[str, Any]) -> list[str]:
    rss = surge["rss_kib"]
    share = surge["kept_share"]
    met = share is not None and share <= 0.5
    return [
        f"| Memory after a surge: RSS kept {surge['after_seconds']:.0f} s after "
        f"{surge['sockets']:,} portal websockets dropped ÷ RSS the surge added "
        f"| {rss['before'] / 1024:.0f} → {rss['peak'] / 1024:.0f} → "
        f"{rss['later'] / 1024:.0f} MiB | {surge['surge_kib'] / 1024:.0f} MiB added "
        f"| {share if share is not None else 'n/a'} | ≤ 0.5 | {_ok(met)} |"
    ]


def machine_markdown(results: dict[str, Any]) -> str:
    """The machine the figures were measured on."""
    m = results["machine"]
    cpu = m["lscpu"]
    redis = results.get("redis") or results.get("p2", {}).get("redis", {})
    pins = results.get("pinning", {})
    lines = [
        f"- `nproc`: {m['nproc']}; CPU: {cpu.get('Model name', '?')} "
        f"({cpu.get('Thread(s) per core', '?')} thread per core, hypervisor "
        f"{cpu.get('Hypervisor vendor', 'none')}); memory {m['memory_gib']} GiB; "
        f"kernel {m['kernel']}",
        f"- Python {m['python']}; " + ", ".join(f"{k} {v}" for k, v in m["packages"].items()),
        f"- Redis: {redis.get('server', '?')} {redis.get('version', '?')}, AOF on "
        f"(appendfsync {redis.get('appendfsync', '?')}), automatic AOF rewrite off",
        f"- Load generator: {m['wrk']}; profile `{results['profile']}`; "
        f"servers pinned to CPU {pins.get('server_cpus')}, Redis / load generator / "
        f"socket holders / stand-ins to CPU {pins.get('helper_cpus')}; run took "
        f"{results.get('seconds', '?')} s, started {results.get('started_at', '?')}",
    ]
    return "\n".join(lines)
