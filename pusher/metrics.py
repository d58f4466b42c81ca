"""Prometheus metrics of a worker process."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class WorkerMetrics:
    """Sends by provider and result, latency, retries, dropped jobs and queue lag."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.sends = Counter(
            "pushgate_push_sends",
            "Push send attempts by provider and result",
            ["provider", "result"],
            registry=self.registry,
        )
        self.send_latency = Histogram(
            "pushgate_push_send_duration_seconds",
            "Push send latency by provider",
            ["provider"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=self.registry,
        )
        self.retries = Counter(
            "pushgate_push_retries",
            "Push sends retried after a transient error",
            ["provider"],
            registry=self.registry,
        )
        self.attempts_stopped = Counter(
            "pushgate_push_attempts_stopped",
            "Retries not made because the prompt was no longer wanted (ended, expired, done, "
            "busy: another worker's attempt in flight)",
            ["reason"],
            registry=self.registry,
        )
        self.jobs = Counter(
            "pushgate_push_jobs",
            "Push jobs by outcome (sent, failed, dropped, done, reclaimed)",
            ["outcome"],
            registry=self.registry,
        )
        self.queue_pending = Gauge(
            "pushgate_queue_pending",
            "Jobs read but not yet acknowledged (all shards)",
            registry=self.registry,
        )
        self.queue_lag = Gauge(
            "pushgate_queue_lag",
            "Jobs not yet read by the consumer group (all shards)",
            registry=self.registry,
        )
        self.job_backlog = Gauge(
            "pushgate_job_backlog",
            "Push jobs not yet acknowledged, per shard: lag (not read yet) and pending (read by"
            " a worker, not acknowledged); every worker reports the whole queue",
            ["shard", "state"],
            registry=self.registry,
        )
        self.expired = Counter(
            "pushgate_challenges_expired_by_sweeper",
            "Challenges ended by the expiry sweep",
            registry=self.registry,
        )
        self.events_relayed = Counter(
            "pushgate_events_relayed",
            "Audit events copied to tenant streams",
            registry=self.registry,
        )
        self.enrollment_events = Counter(
            "pushgate_enrollment_events",
            "Enrollment-period events emitted by the scheduler (reminded, expired)",
            ["kind"],
            registry=self.registry,
        )
        self.webhook_deliveries = Counter(
            "pushgate_webhook_deliveries",
            "Webhook delivery attempts by result (delivered, failed, gave_up, dropped)",
            ["result"],
            registry=self.registry,
        )
