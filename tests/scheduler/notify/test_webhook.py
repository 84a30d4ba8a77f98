"""Webhooks: the run as JSON, signed so that the documented snippet verifies a real delivery."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from definitions import WebhookNotification
from executor.fake import Script
from scheduler.notify.sender import Sender
from tests.scheduler.factories import make_task
from tests.scheduler.notify.conftest import PUBLIC_URL, deliveries, drain
from tests.scheduler.test_engine import World
from tests.support.receivers import Recorder

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
DOCS = Path(__file__).parents[3] / "docs" / "notifications.md"


def documented_verify() -> Callable[..., bool]:
    """The `verify` function of docs/notifications.md, as a reader would paste it."""
    [snippet] = [
        block for block in re.findall(r"```python\n(.*?)```", DOCS.read_text(), re.S)
        if "def verify" in block
    ]  # fmt: skip
    namespace: dict[str, Any] = {}
    exec(snippet, namespace)
    return namespace["verify"]


def lower(headers: dict[str, str]) -> dict[str, str]:
    """Header names in lower case."""
    return {k.lower(): v for k, v in headers.items()}


def test_a_delivery_describes_the_run_and_the_documented_check_verifies_it(
    world: World, make_sender: Callable[..., Sender], receiver: Recorder
) -> None:
    world.clock.now = datetime.now(UTC)  # the snippet checks the timestamp against real time
    world.save(
        make_task("a"),
        make_task("b", "a"),
        notifications=(WebhookNotification(receiver.url + "/in?x=1", "always", SECRET),),
    )
    world.fake.script("b", Script(exit_code=3))
    run_id = world.trigger()
    world.settle()
    drain(make_sender())
    [received] = receiver.received
    [delivery] = deliveries(run_id)
    headers = lower(received.headers)
    assert received.path == "/in?x=1"
    assert headers["webhook-id"] == delivery.id
    assert headers["content-type"] == "application/json"
    body = received.json()
    assert {k: body[k] for k in ("type", "process_definition_name", "version", "process_id")} == {
        "type": "process.finished", "process_definition_name": "job", "version": 1,
        "process_id": run_id,
    }  # fmt: skip
    assert (body["status"], body["previous_status"]) == ("failed", None)
    assert body["link"] == f"{PUBLIC_URL}/runs/{run_id}"
    assert body["start_time"].endswith("Z") and body["end_time"].endswith("Z")
    assert [(t["task_definition_name"], t["status"], t["attempts"]) for t in body["tasks"]] == [
        ("a", "succeeded", 1), ("b", "failed", 1),
    ]  # fmt: skip
    assert "3" in body["tasks"][1]["reason"]

    verify = documented_verify()
    assert verify(SECRET, headers, received.body)
    assert not verify(SECRET, headers, received.body.replace(b"failed", b"succeeded"))
    assert not verify("whsec_" + "A" * 32, headers, received.body)
    replayed = {**headers, "webhook-timestamp": str(int(headers["webhook-timestamp"]) - 3600)}
    assert not verify(SECRET, replayed, received.body)


def test_a_webhook_without_a_secret_is_sent_unsigned(
    world: World, make_sender: Callable[..., Sender], receiver: Recorder
) -> None:
    world.save(notifications=(WebhookNotification(receiver.url, "always"),))
    world.trigger()
    world.settle()
    drain(make_sender())
    [received] = receiver.received
    headers = lower(received.headers)
    assert "webhook-signature" not in headers
    assert headers["webhook-timestamp"] == str(int(world.clock().timestamp()))
