"""When a finished run notifies: every combination of status, previous status and notify_when."""

from __future__ import annotations

import base64
import itertools
import secrets

import pytest

from definitions import (
    EmailNotification,
    NotifyWhen,
    PagerdutyNotification,
    WebhookNotification,
    action_for,
    mask_notification_secrets,
    parse_definition,
    should_notify,
)
from definitions.errors import DefinitionError
from definitions.notify import MASK, leading_failures, pagerduty_action
from tests.definitions.samples import wire_definition

S, F, K = "succeeded", "failed", "killed"
FIRST = None

# notify_when -> the (status, previous status) pairs that notify; every other pair does not.
# Sundial: always; never; on_failure = "when a process fails"; on_state_change = "from
# succeeding to failing and vice versa"; on_state_change_and_failures = "going from failing
# to succeeded and on each failure". A first run is a change; killed is a failure.
NOTIFYING = {
    "always": {(s, p) for s in (S, F, K) for p in (FIRST, S, F, K)},
    "never": set(),
    "on_failure": {(s, p) for s in (F, K) for p in (FIRST, S, F, K)},
    "on_state_change": {
        (S, FIRST), (F, FIRST), (K, FIRST), (S, F), (S, K), (F, S), (K, S),
    },
    "on_state_change_and_failures": {
        (S, FIRST), (S, F), (S, K), *((s, p) for s in (F, K) for p in (FIRST, S, F, K)),
    },
}  # fmt: skip

CASES = list(itertools.product([m.value for m in NotifyWhen], (S, F, K), (FIRST, S, F, K)))


def test_the_table_covers_every_option() -> None:
    assert set(NOTIFYING) == {m.value for m in NotifyWhen}
    assert len(CASES) == 5 * 3 * 4


@pytest.mark.parametrize(("notify_when", "status", "previous"), CASES)
def test_should_notify(notify_when: str, status: str, previous: str | None) -> None:
    expected = (status, previous) in NOTIFYING[notify_when]
    assert should_notify(status, previous, notify_when) is expected


@pytest.mark.parametrize(
    ("status", "failures_before", "threshold", "expected"),
    [
        (F, 0, 1, "trigger"),
        (F, 0, 3, None),
        (F, 1, 3, None),
        (F, 2, 3, "trigger"),  # the third failure in a row
        (F, 3, 3, "trigger"),  # a repeat: same dedup key, no new incident
        (K, 2, 3, "trigger"),
        (S, 0, 1, None),  # nothing open to resolve
        (S, 2, 3, None),  # failures never reached the threshold
        (S, 3, 3, "resolve"),
        (S, 7, 3, "resolve"),
    ],
)
def test_pagerduty_action(
    status: str, failures_before: int, threshold: int, expected: str | None
) -> None:
    assert pagerduty_action(status, failures_before, threshold) == expected


def test_leading_failures_counts_back_to_the_last_success() -> None:
    assert leading_failures([]) == 0
    assert leading_failures([F, K, F, S, F]) == 3
    assert leading_failures([S, F]) == 0


def test_action_for_each_kind() -> None:
    email = EmailNotification("ops", "ops@example.com", "on_failure")
    hook = WebhookNotification("https://example.com/h", "always")
    page = PagerdutyNotification("key", num_consecutive_failures=2)
    assert action_for(email, F, [S]) == "notify"
    assert action_for(email, S, [F]) is None
    assert action_for(hook, S, []) == "notify"
    assert action_for(page, F, []) is None
    assert action_for(page, F, [F, S]) == "trigger"
    assert action_for(page, S, [F, F]) == "resolve"


def webhook_definition(secret: str) -> dict:
    """A minimal definition with one signed webhook."""
    return wire_definition(
        notifications=[{"webhook": {"url": "https://example.com/h", "secret": secret}}]
    )


def test_a_webhook_secret_must_be_whsec_base64() -> None:
    documented = "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()  # as the docs do
    for good in ("whsec_" + "A" * 32, documented):
        assert parse_definition(webhook_definition(good)).notifications[0].secret == good
    for bad in ("A" * 38, "whsec_short", "whsec_" + "A" * 33, "whsec_" + "*" * 32):
        with pytest.raises(DefinitionError) as raised:
            parse_definition(webhook_definition(bad))
        assert "notifications.0.webhook.secret" in raised.value.fields


def test_masking_hides_routing_keys_and_webhook_secrets_only() -> None:
    definition = parse_definition(
        wire_definition(
            notifications=[
                {"email": {"name": "ops", "email": "ops@example.com"}},
                {"pagerduty": {"service_key": "routing-key"}},
                {"webhook": {"url": "https://example.com/h", "secret": "whsec_" + "B" * 32}},
                {"webhook": {"url": "https://example.com/unsigned"}},
            ]
        )
    )
    email, page, hook, unsigned = mask_notification_secrets(definition).notifications
    assert email == definition.notifications[0]
    assert page.service_key == MASK and hook.secret == MASK
    assert unsigned.secret is None
    assert "routing-key" not in repr(definition)
