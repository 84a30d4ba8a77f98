"""Notifications of a real service: delivered once across a kill -9, never holding up runs."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest

from tests.scheduler.test_durability import Service
from tests.scheduler.test_durability import service as service  # a fixture, shared
from tests.scheduler.test_e2e import definition, task, tasks_of
from tests.support.live import free_port, live_service, wait_for
from tests.support.receivers import recorder

pytestmark = [pytest.mark.docker, pytest.mark.slow]


def loud(url: str) -> dict[str, Any]:
    """A definition whose one task fails, with a webhook told of every run."""
    hook = {"webhook": {"url": url, "notify_when": "always"}}
    return definition("loud", task("main", "exit 3"), notifications=[hook])


def notification(get: Any, run_id: str) -> dict[str, Any] | None:
    """The run's one notification, once the run has ended."""
    run = get(f"/api/processes/{run_id}").json()
    return run["notifications"][0] if run["notifications"] else None


def test_a_kill_9_before_delivery_still_delivers_exactly_once(service: Service) -> None:
    port = free_port()  # nobody listens yet: tries fail with connection refused
    service.env.update(
        GNOMON_NOTIFY_ALLOWED_NETWORKS="127.0.0.1",
        GNOMON_NOTIFY_RETRY_BASE_SECONDS="1",
        GNOMON_NOTIFY_TIMEOUT_SECONDS="2",
    )
    service.start()
    body = loud(f"http://127.0.0.1:{port}/hook")
    assert service.api("PUT", "/api/process_definitions/loud", json=body).status_code == 201
    response = service.api("POST", "/api/process_definitions/loud/trigger")
    run_id = response.headers["Location"].rsplit("/", 1)[-1]
    get = lambda path: service.api("GET", path)  # noqa: E731
    # a claim counts the try before it is made: wait for the try's error, not the count
    tried = wait_for(
        lambda: (n := notification(get, run_id)) and n["last_error"] and n, 60, "a first try"
    )
    assert tried["state"] == "pending" and "ConnectionRefusedError" in tried["last_error"]

    service.crash()
    with recorder(port) as receiver:
        service.start()
        sent = wait_for(
            lambda: (n := notification(get, run_id))["state"] == "sent" and n, 60, "delivery"
        )
        [received] = receiver.received
    assert received.headers["webhook-id"] == sent["id"]
    assert received.json()["process_id"] == run_id
    assert received.json()["status"] == "failed"
    assert sent["attempts"] >= 2 and sent["last_error"] is None


def test_a_hanging_receiver_does_not_delay_the_next_dag_step(
    busybox_image: str, database_url: str
) -> None:
    with (
        recorder() as receiver,
        live_service(
            database_url,
            NOTIFY_ALLOWED_NETWORKS="127.0.0.1",
            NOTIFY_TIMEOUT_SECONDS=30,
            NOTIFY_WORKERS=1,
        ) as live,
    ):
        receiver.hang = True
        live.put_definition(loud(receiver.url))
        loud_run = live.wait_run(live.trigger("loud"))
        assert receiver.holding.wait(30), "the sender never reached the receiver"
        live.put_definition(definition("chain", task("a"), task("b", "true", "a")))
        chain = live.wait_run(live.trigger("chain"))
        held = live.run(loud_run["process_id"])["notifications"][0]
        receiver.release()
        sent = wait_for(
            lambda: live.run(loud_run["process_id"])["notifications"][0]["state"] == "sent",
            30,
            "the held delivery to complete",
        )
    assert chain["status"] == "succeeded"
    attempts = tasks_of(chain)
    step = parse(attempts["b"][0]["start_time"]) - parse(attempts["a"][0]["end_time"])
    print(f"DAG step while the receiver hung: {step.total_seconds() * 1000:.0f} ms")
    assert step.total_seconds() < 5  # the receiver was holding the sender for all of it
    assert (held["state"], held["attempts"]) == ("pending", 1)
    assert sent and len(receiver.received) == 1


def parse(text: str) -> datetime:
    """A wire timestamp."""
    return datetime.fromisoformat(text.replace("Z", "+00:00"))
