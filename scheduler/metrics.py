"""The scheduler's Prometheus metrics, fed by engine events."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

LAG_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
DURATION_BUCKETS = (0.1, 0.5, 1, 5, 15, 30, 60, 300, 900, 1800, 3600, 4 * 3600, 12 * 3600)


class SchedulerMetrics:
    """Counters, histograms and gauges of runs and attempts."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.runs_started = Counter(
            "gnomon_runs_started", "Runs started.", ["definition", "trigger"], registry=registry
        )
        self.runs_finished = Counter(
            "gnomon_runs_finished", "Runs finished.", ["definition", "status"], registry=registry
        )
        self.attempts_finished = Counter(
            "gnomon_attempts_finished", "Attempts finished.", ["outcome"], registry=registry
        )
        self.fires_skipped = Counter(
            "gnomon_fires_skipped",
            "Scheduled fires dropped (overlap skip or misfire policy).",
            ["definition", "reason"],
            registry=registry,
        )
        self.schedule_errors = Counter(
            "gnomon_schedule_errors",
            "Scheduled fires that failed (a stored definition that no longer loads, a clash).",
            ["definition"],
            registry=registry,
        )
        self.attempt_duration = Histogram(
            "gnomon_attempt_duration_seconds",
            "Container run time of finished attempts.",
            buckets=DURATION_BUCKETS,
            registry=registry,
        )
        self.schedule_lag = Histogram(
            "gnomon_schedule_lag_seconds",
            "Run start minus its due time, for scheduled runs.",
            buckets=LAG_BUCKETS,
            registry=registry,
        )
        self.fire_lag = Histogram(
            "gnomon_fire_lag_seconds",
            "Run created minus its due time, for scheduled runs.",
            buckets=LAG_BUCKETS,
            registry=registry,
        )
        self.attempts_running = Gauge(
            "gnomon_attempts_running", "Attempts starting or running.", registry=registry
        )
        self.attempts_pending = Gauge(
            "gnomon_attempts_pending", "Attempts waiting for capacity.", registry=registry
        )
        self.pruned = Counter(
            "gnomon_retention_pruned",
            "Rows deleted by retention: runs, attempts, log_entries, metadata_entries, "
            "audit_events.",
            ["kind"],
            registry=registry,
        )


def trigger_kind(trigger: str) -> str:
    """The bounded label for a run's trigger (`manual:alice` counts as `manual`)."""
    return trigger.split(":", 1)[0]
