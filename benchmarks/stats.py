"""Small statistics helpers: percentiles, medians and ratio summaries."""

from __future__ import annotations

import statistics
from collections.abc import Sequence


def percentile(values: Sequence[float], pct: float) -> float:
    """The ``pct`` percentile (nearest rank, so p99 of 200 samples is the 198th)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(pct / 100 * len(ordered) + 0.4999)))
    return float(ordered[rank - 1])


def latency_summary(ms: Sequence[float]) -> dict[str, float]:
    """p50 / p90 / p99 / max of latencies in milliseconds (3 decimals)."""
    return {
        "samples": len(ms),
        "p50": round(percentile(ms, 50), 3),
        "p90": round(percentile(ms, 90), 3),
        "p99": round(percentile(ms, 99), 3),
        "max": round(max(ms), 3) if ms else float("nan"),
    }


def ratio_summary(ratios: Sequence[float]) -> dict[str, float]:
    """Median of per-round ratios with their spread (each round is an A/B pair)."""
    return {
        "median": round(statistics.median(ratios), 3),
        "min": round(min(ratios), 3),
        "max": round(max(ratios), 3),
        "rounds": len(ratios),
    }


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values))
