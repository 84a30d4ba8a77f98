"""Prometheus series of notifications: sent, given up and pending, by kind."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge

KINDS = ("email", "pagerduty", "webhook")


class NotifyMetrics:
    """Counters of outcomes and a gauge of the outbox, labelled by kind."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.sent = Counter(
            "gnomon_notifications_sent", "Notifications delivered.", ["kind"], registry=registry
        )
        self.failed = Counter(
            "gnomon_notifications_failed",
            "Notifications given up on (permanent error, or retried long enough).",
            ["kind"],
            registry=registry,
        )
        self.retried = Counter(
            "gnomon_notification_tries_failed",
            "Tries that failed and will be retried.",
            ["kind"],
            registry=registry,
        )
        self.pending = Gauge(
            "gnomon_notifications_pending",
            "Notifications waiting to be delivered (all instances).",
            ["kind"],
            registry=registry,
        )
        for kind in KINDS:  # every series shows from the start, at 0
            for series in (self.sent, self.failed, self.retried, self.pending):
                series.labels(kind)

    def set_pending(self, counts: dict[str, int]) -> None:
        """Show the outbox's current pending counts."""
        for kind in KINDS:
            self.pending.labels(kind).set(counts.get(kind, 0))
