"""PagerDuty Events API v2: `trigger` and `resolve` events, one dedup key per definition."""

from __future__ import annotations

import json

from definitions import PagerdutyNotification
from definitions.notify import RESOLVE, TRIGGER
from scheduler.notify.destinations import post
from scheduler.notify.report import RunReport, subject
from scheduler.notify.settings import NotifySettings


def dedup_key(definition: str, test: bool = False) -> str:
    """The incident key of a definition: repeated triggers update one incident."""
    return f"gnomon/{definition}" + ("/test" if test else "")


def event(notification: PagerdutyNotification, report: RunReport, action: str) -> dict[str, object]:
    """The Events API v2 body of a `trigger` or `resolve`."""
    body: dict[str, object] = {
        "routing_key": notification.service_key,
        "event_action": action,
        "dedup_key": dedup_key(report.definition, report.test),
    }
    if action == TRIGGER:
        body["payload"] = {
            "summary": subject(report)
            + ("" if report.test else f" ({notification.num_consecutive_failures}+ in a row)"),
            "source": "gnomon",
            "severity": "info" if report.test else "error",
            "component": report.definition,
            "custom_details": {"process_id": report.run_id, "reason": report.reason},
        }
        body["links"] = [{"href": report.link, "text": "Gnomon run"}]
    return body


def send(
    notification: PagerdutyNotification, report: RunReport, action: str, settings: NotifySettings
) -> None:
    """Send one event to `{api_url}/v2/enqueue`; DeliveryError if PagerDuty does not take it."""
    post(
        notification.api_url.rstrip("/") + "/v2/enqueue",
        json.dumps(event(notification, report, action)).encode(),
        {"Content-Type": "application/json", "User-Agent": "Gnomon"},
        timeout=settings.timeout_seconds,
        allowed=settings.allowed_networks,
    )


def send_test(
    notification: PagerdutyNotification, report: RunReport, settings: NotifySettings
) -> None:
    """A test: trigger an `info` incident under a test key, then resolve it at once."""
    for action in (TRIGGER, RESOLVE):
        send(notification, report, action, settings)
