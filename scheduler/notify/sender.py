"""Sender threads: claim due deliveries, send them outside any transaction, record outcomes.

They run apart from the scheduling loop, so a slow or hanging receiver (bounded by the
timeouts) only ever holds up its own thread. A restart loses nothing: what was not
recorded as sent is still pending, and a claim that died with its process lapses.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from definitions import Notification, ProcessDefinition, definition_from_json
from scheduler.models import Delivery, Run, db
from scheduler.notify import deliver, outbox
from scheduler.notify.metrics import NotifyMetrics
from scheduler.notify.report import RunReport, load_report, test_report
from scheduler.notify.settings import DeliveryError, NotifySettings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TestResult:
    """How a test message through one notification went."""

    __test__ = False  # not a pytest test class, whatever its name

    kind: str
    target: str
    state: str  # sent | failed
    last_error: str | None


def notification_of(delivery: Delivery) -> Notification:
    """The notification a delivery is for, from its run's copy of the definition."""
    body = Run.select(Run.definition_body).where(Run.id == delivery.run_id).scalar()
    return definition_from_json(body).notifications[delivery.position]


class Sender:
    """`workers` threads draining the outbox; `wake()` after a run ends makes them look now."""

    def __init__(
        self,
        settings: NotifySettings,
        clock: Callable[[], datetime],
        metrics: NotifyMetrics | None = None,
    ) -> None:
        self.settings = settings
        self.clock = clock
        self.metrics = metrics
        self.policy = outbox.RetryPolicy(
            timedelta(seconds=settings.retry_base_seconds),
            timedelta(seconds=settings.retry_max_delay_seconds),
            timedelta(seconds=settings.retry_for_seconds),
        )
        self._lease = timedelta(seconds=settings.lease_seconds)
        self._condition = threading.Condition()
        self._woken = False
        self._stopping = False
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        """Start the sender threads."""
        self._stopping = False
        self._threads = [
            threading.Thread(target=self._loop, name=f"gnomon-notify-{i}", daemon=True)
            for i in range(self.settings.workers)
        ]
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        """Stop the threads once their current try has ended (bounded by its timeouts)."""
        with self._condition:
            self._stopping = True
            self._condition.notify_all()
        for thread in self._threads:
            thread.join(timeout=self.settings.lease_seconds)
        self._threads = []

    def wake(self) -> None:
        """Look for due deliveries now (from any thread)."""
        with self._condition:
            self._woken = True
            self._condition.notify_all()

    def _loop(self) -> None:
        """Deliver while there is work; otherwise sleep until woken or the poll period ends."""
        while not self._stopping:
            try:
                with db.connection_context():
                    worked = self.step(self.clock())
            except Exception:
                log.exception("notification sender pass failed; trying again shortly")
                worked = False
            if not worked:
                with self._condition:
                    if not self._woken and not self._stopping:
                        self._condition.wait(self.settings.poll_seconds)
                    self._woken = False

    def step(self, now: datetime) -> bool:
        """Claim and try one due delivery; False if none was due."""
        delivery = outbox.claim(now, self._lease)
        if delivery is None:
            if self.metrics:
                self.metrics.set_pending(outbox.pending_by_kind())
            return False
        try:
            notification = notification_of(delivery)
            report = load_report(delivery, self.settings.public_url)
            deliver.send(notification, report, delivery.action, delivery.id, now, self.settings)
        except DeliveryError as error:
            self._failed(delivery, str(error), error.permanent)
        except Exception:
            log.exception("notification %s could not be built or sent", delivery.id)
            self._failed(delivery, "internal error (see the service log)", False)
        else:
            if outbox.record_sent(delivery, self.clock()) and self.metrics:
                self.metrics.sent.labels(delivery.kind).inc()
            log.info("notification %s (%s) sent", delivery.id, delivery.kind)
        return True

    def _failed(self, delivery: Delivery, error: str, permanent: bool) -> None:
        """Record a failed try and count it."""
        state = outbox.record_failure(delivery, error, permanent, self.clock(), self.policy)
        log.warning(
            "notification %s (%s to %s), attempt %d, failed%s: %s",
            delivery.id, delivery.kind, delivery.target, delivery.attempts,
            "; giving up" if state == outbox.GAVE_UP else "; will retry", error,
        )  # fmt: skip
        if self.metrics:
            series = self.metrics.failed if state == outbox.GAVE_UP else self.metrics.retried
            series.labels(delivery.kind).inc()

    def send_tests(self, definition: ProcessDefinition, version: int) -> list[TestResult]:
        """Send a marked test message through each notification of `definition`, now."""
        report = test_report(definition.process_definition_name, version, self.settings.public_url)
        return [self._test(n, report) for n in definition.notifications]

    def _test(self, notification: Notification, report: RunReport) -> TestResult:
        """One test message, and how it went."""
        kind, target = deliver.kind_of(notification), deliver.target_of(notification)
        try:
            deliver.send(notification, report, "test", str(uuid.uuid4()), self.clock(),
                         self.settings)  # fmt: skip
        except DeliveryError as error:
            return TestResult(kind, target, outbox.GAVE_UP, str(error))
        return TestResult(kind, target, outbox.SENT, None)
