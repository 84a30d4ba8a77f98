"""One try of one notification, whatever its kind: the channel modules behind one call."""

from __future__ import annotations

from datetime import datetime

from definitions import (
    EmailNotification,
    Notification,
    PagerdutyNotification,
    WebhookNotification,
)
from scheduler.notify import mail, pagerduty, webhook
from scheduler.notify.destinations import public_target
from scheduler.notify.report import RunReport
from scheduler.notify.settings import DeliveryError, NotifySettings

KINDS: dict[type, str] = {
    EmailNotification: "email",
    PagerdutyNotification: "pagerduty",
    WebhookNotification: "webhook",
}


def kind_of(notification: Notification) -> str:
    """`email`, `pagerduty` or `webhook`."""
    return KINDS[type(notification)]


def target_of(notification: Notification) -> str:
    """Where a notification goes, as readers may see it (never a key, path or secret)."""
    if isinstance(notification, EmailNotification):
        return notification.email
    if isinstance(notification, PagerdutyNotification):
        return public_target(notification.api_url)
    return public_target(notification.url)


def secrets_of(notification: Notification, settings: NotifySettings) -> list[str]:
    """The secret strings an error message about `notification` must not carry."""
    values = [settings.smtp.password, getattr(notification, "service_key", "")]
    values.append(getattr(notification, "secret", None) or "")
    return [value for value in values if value]


def scrub(text: str, secrets: list[str]) -> str:
    """`text` with every secret in it masked."""
    for secret in secrets:
        text = text.replace(secret, "***")
    return text


def send(
    notification: Notification,
    report: RunReport,
    action: str,
    message_id: str,
    now: datetime,
    settings: NotifySettings,
) -> None:
    """Send one message through its channel (a test goes through every step of a real one);
    DeliveryError, its text scrubbed of secrets, if it was not taken."""
    try:
        if isinstance(notification, EmailNotification):
            mail.send(notification, report, message_id, settings.smtp, settings.timeout_seconds)
        elif isinstance(notification, PagerdutyNotification) and report.test:
            pagerduty.send_test(notification, report, settings)
        elif isinstance(notification, PagerdutyNotification):
            pagerduty.send(notification, report, action, settings)
        else:
            webhook.send(notification, report, message_id, int(now.timestamp()), settings)
    except DeliveryError as error:
        text = scrub(str(error), secrets_of(notification, settings))
        raise DeliveryError(text, permanent=error.permanent) from None
