"""Prometheus metrics of one gateway app (its own registry, so several apps share a process)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class GatewayMetrics:
    """Requests, latency, open websockets and challenge outcomes."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.requests = Counter(
            "pushgate_http_requests",
            "HTTP requests by route, method and status",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "pushgate_http_request_duration_seconds",
            "HTTP request latency by route",
            ["route"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=self.registry,
        )
        self.open_websockets = Gauge(
            "pushgate_open_websockets",
            "Open websockets by kind (portal, device)",
            ["kind"],
            registry=self.registry,
        )
        self.challenges = Counter(
            "pushgate_challenges",
            "Challenge outcomes decided by this gateway (created, deduplicated, throttled, "
            "approved, denied, fraud, cancelled, expired, ...)",
            ["outcome"],
            registry=self.registry,
        )
        self.backend_errors = Counter(
            "pushgate_backend_unavailable",
            "Requests answered 503 because Redis was unreachable",
            registry=self.registry,
        )
