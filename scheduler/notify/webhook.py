"""Webhooks: the run as JSON, signed the Standard Webhooks way (webhook-id, -timestamp, -signature).

The signature is `v1,` + base64(HMAC-SHA256(key, "{id}.{timestamp}.{body}")), the key being
the base64-decoded part of the webhook's `whsec_` secret. A receiver checks it and refuses
old timestamps (replays); the id stays the same across retries, so it can drop repeats.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

from definitions import WebhookNotification
from scheduler.notify.destinations import post
from scheduler.notify.report import RunReport, webhook_body
from scheduler.notify.settings import NotifySettings

SECRET_PREFIX = "whsec_"


def signature(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    """The `webhook-signature` header value for one delivery."""
    key = base64.b64decode(secret.removeprefix(SECRET_PREFIX))
    signed = f"{message_id}.{timestamp}.".encode() + body
    digest = hmac.new(key, signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def headers(
    notification: WebhookNotification, message_id: str, timestamp: int, body: bytes
) -> dict[str, str]:
    """The headers of one delivery; signed when the webhook has a secret."""
    result = {
        "Content-Type": "application/json",
        "User-Agent": "Gnomon",
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
    }
    if notification.secret:
        result["webhook-signature"] = signature(notification.secret, message_id, timestamp, body)
    return result


def send(
    notification: WebhookNotification,
    report: RunReport,
    message_id: str,
    timestamp: int,
    settings: NotifySettings,
) -> None:
    """POST the run to the webhook's URL; DeliveryError if it is not taken."""
    body = webhook_body(report, message_id)
    post(
        notification.url,
        body,
        headers(notification, message_id, timestamp, body),
        timeout=settings.timeout_seconds,
        allowed=settings.allowed_networks,
    )
