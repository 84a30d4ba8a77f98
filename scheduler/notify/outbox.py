"""The outbox: deliveries decided when a run ends, claimed by senders, and their outcomes.

Every write is conditional, so several senders (threads or instances) never deliver one
row at the same time: a claim moves the row's due time past its lease, and an outcome is
recorded only by the claim that made it (same attempt count, still pending).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from peewee import fn

from definitions import action_for, definition_from_json, history_needed
from scheduler.models import Delivery, Run
from scheduler.notify.deliver import kind_of, target_of
from scheduler.states import FINAL_RUN
from scheduler.tx import write_transaction

PENDING = "pending"
SENT = "sent"
GAVE_UP = "failed"
MAX_ERROR_CHARS = 1000


def enqueue(run: Run, status: str, now: datetime) -> int:
    """Write the deliveries the end of `run` calls for, within the caller's transaction
    (the one that ends the run); how many."""
    definition = definition_from_json(run.definition_body)
    if not definition.notifications:
        return 0
    previous = earlier_statuses(run, history_needed(definition))
    rows = [
        _row(run, position, notification, action, status, previous, now)
        for position, notification in enumerate(definition.notifications)
        if (action := action_for(notification, status, previous)) is not None
    ]
    if rows:
        Delivery.insert_many(rows).execute()
    return len(rows)


def earlier_statuses(run: Run, limit: int) -> list[str]:
    """Statuses of the definition's runs that ended before `run`, newest first."""
    query = (
        Run.select(Run.status)
        .where(
            (Run.definition_name == run.definition_name)
            & (Run.id != run.id)
            & Run.ended_at.is_null(False)
            & Run.status.in_(FINAL_RUN)
        )
        .order_by(Run.ended_at.desc(), Run.id.desc())
        .limit(limit)
    )
    return [status for (status,) in query.tuples()]


def _row(
    run: Run,
    position: int,
    notification: object,
    action: str,
    status: str,
    previous: list[str],
    now: datetime,
) -> dict[str, object]:
    """The outbox row of one delivery, due at once."""
    return {
        "id": str(uuid.uuid4()),
        "run": run.id,
        "position": position,
        "kind": kind_of(notification),
        "target": target_of(notification)[:255],
        "action": action,
        "status": status,
        "previous_status": previous[0] if previous else None,
        "state": PENDING,
        "attempts": 0,
        "created_at": now,
        "due_at": now,
    }


def claim(now: datetime, lease: timedelta) -> Delivery | None:
    """Claim the most overdue pending delivery for one try, or None if none is due."""
    due = Delivery.select().where((Delivery.state == PENDING) & (Delivery.due_at <= now))
    for delivery in list(due.order_by(Delivery.due_at, Delivery.id).limit(8)):
        with write_transaction():
            claimed = (
                Delivery.update(attempts=delivery.attempts + 1, due_at=now + lease)
                .where(
                    (Delivery.id == delivery.id)
                    & (Delivery.state == PENDING)
                    & (Delivery.attempts == delivery.attempts)
                )
                .execute()
            )
        if claimed:
            delivery.attempts += 1
            return delivery
    return None


def _finish(delivery: Delivery, **values: object) -> bool:
    """Record the outcome of the claim `delivery` holds; False if the claim had lapsed."""
    with write_transaction():
        return bool(
            Delivery.update(**values)
            .where(
                (Delivery.id == delivery.id)
                & (Delivery.state == PENDING)
                & (Delivery.attempts == delivery.attempts)
            )
            .execute()
        )


def record_sent(delivery: Delivery, now: datetime) -> bool:
    """The try succeeded."""
    return _finish(delivery, state=SENT, sent_at=now, last_error=None)


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff, kept up for `retry_for` after the run ended."""

    base: timedelta
    most: timedelta
    retry_for: timedelta

    def delay(self, attempts: int) -> timedelta:
        """The wait after the `attempts`-th failed try."""
        return min(self.base * 2 ** min(attempts - 1, 30), self.most)


def record_failure(
    delivery: Delivery, error: str, permanent: bool, now: datetime, policy: RetryPolicy
) -> str:
    """The try failed: retry later, or give up (permanent error, or retried long enough);
    the delivery's new state."""
    error = error[:MAX_ERROR_CHARS]
    if permanent or now - delivery.created_at >= policy.retry_for:
        why = "" if permanent else f" (retried for {policy.retry_for})"
        text = f"gave up after {delivery.attempts} attempt(s){why}: {error}"
        return GAVE_UP if _finish(delivery, state=GAVE_UP, last_error=text) else PENDING
    _finish(delivery, due_at=now + policy.delay(delivery.attempts), last_error=error)
    return PENDING


def pending_by_kind() -> dict[str, int]:
    """How many deliveries wait, by kind."""
    query = Delivery.select(Delivery.kind, fn.COUNT(Delivery.id)).where(Delivery.state == PENDING)
    return dict(query.group_by(Delivery.kind).tuples())
