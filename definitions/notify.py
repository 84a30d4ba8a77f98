"""When a finished run notifies, and which parts of a notification are secrets.

Pure: the scheduler asks these functions at the end of each run, with the statuses it read.
"""

from collections.abc import Sequence
from dataclasses import replace

from .model import (
    Notification,
    NotifyWhen,
    PagerdutyNotification,
    ProcessDefinition,
    WebhookNotification,
)

FAILED = "failed"
KILLED = "killed"  # a killed run is stored as failed; counted the same either way
NOTIFY = "notify"  # the action of an email or webhook delivery
TRIGGER = "trigger"  # PagerDuty's actions
RESOLVE = "resolve"
MASK = "********"  # what a caller without `write` sees in place of a secret


def is_failure(status: str) -> bool:
    """Whether a finished run's status counts as a failure."""
    return status in (FAILED, KILLED)


def should_notify(status: str, previous_status: str | None, notify_when: str) -> bool:
    """Sundial's `notification_options` for a run that ended with `status`.

    `previous_status` is the status of the definition's previous finished run, None if
    this is its first: a first run counts as a state change.
    """
    failed = is_failure(status)
    changed = previous_status is None or failed != is_failure(previous_status)
    return {
        NotifyWhen.ALWAYS: True,
        NotifyWhen.NEVER: False,
        NotifyWhen.ON_FAILURE: failed,
        NotifyWhen.ON_STATE_CHANGE: changed,
        NotifyWhen.ON_STATE_CHANGE_AND_FAILURES: failed or changed,
    }[NotifyWhen(notify_when)]


def pagerduty_action(status: str, failures_before: int, threshold: int) -> str | None:
    """`trigger` once `threshold` runs in a row have failed (and at each further failure, which
    PagerDuty folds into the open incident), `resolve` at the first success after that."""
    if is_failure(status):
        return TRIGGER if failures_before + 1 >= threshold else None
    return RESOLVE if failures_before >= threshold else None


def leading_failures(statuses: Sequence[str]) -> int:
    """How many of `statuses` (newest first) are failures before the first success."""
    count = 0
    for status in statuses:
        if not is_failure(status):
            break
        count += 1
    return count


def action_for(notification: Notification, status: str, previous: Sequence[str]) -> str | None:
    """What `notification` sends for a run that ended with `status`, or None.

    `previous` holds the statuses of the definition's earlier finished runs, newest first
    (at least `num_consecutive_failures` of them when there are that many).
    """
    if isinstance(notification, PagerdutyNotification):
        threshold = notification.num_consecutive_failures
        return pagerduty_action(status, leading_failures(previous), threshold)
    last = previous[0] if previous else None
    return NOTIFY if should_notify(status, last, notification.notify_when) else None


def history_needed(definition: ProcessDefinition) -> int:
    """How many earlier finished runs `action_for` needs to decide every notification."""
    thresholds = [
        n.num_consecutive_failures
        for n in definition.notifications
        if isinstance(n, PagerdutyNotification)
    ]
    return max([1, *thresholds])


def mask_notification_secrets(definition: ProcessDefinition) -> ProcessDefinition:
    """`definition` with its notifications' secrets (routing keys, webhook secrets) masked."""
    return replace(definition, notifications=tuple(_masked(n) for n in definition.notifications))


def _masked(notification: Notification) -> Notification:
    """One notification with its secret masked."""
    if isinstance(notification, PagerdutyNotification):
        return replace(notification, service_key=MASK)
    if isinstance(notification, WebhookNotification) and notification.secret is not None:
        return replace(notification, secret=MASK)
    return notification
