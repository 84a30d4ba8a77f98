"""The outbox: decided in the transaction that ends a run, claimed once, retried, given up."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest

from definitions import EmailNotification, WebhookNotification
from executor.fake import Script
from scheduler import queries, runs
from scheduler.models import Delivery, Run
from scheduler.notify import outbox
from scheduler.notify.sender import Sender
from tests.scheduler.notify.conftest import deliveries, drain
from tests.scheduler.test_engine import World
from tests.support.receivers import Recorder


def fail_main(world: World) -> None:
    """Make every attempt of task `main` exit 1."""
    world.fake.script("main", Script(exit_code=1, lines=(("stdout", "boom"),)))


def run_once(world: World) -> str:
    """Trigger a run of `job` and let it end."""
    run_id = world.trigger()
    world.settle()
    assert Run.get_by_id(run_id).status in ("succeeded", "failed")
    return run_id


def test_a_failed_run_writes_the_deliveries_its_notifications_call_for(world: World) -> None:
    world.save(
        notifications=(
            EmailNotification("ops", "ops@example.com", "on_failure"),
            EmailNotification("quiet", "quiet@example.com", "never"),
            WebhookNotification("https://hooks.example.com/x?token=t", "always"),
        )
    )
    fail_main(world)
    run_id = run_once(world)
    rows = deliveries(run_id)
    assert [(d.kind, d.target, d.action, d.position) for d in rows] == [
        ("email", "ops@example.com", "notify", 0),
        ("webhook", "https://hooks.example.com", "notify", 2),  # no path or query: tokens
    ]
    assert all(d.state == "pending" and d.attempts == 0 for d in rows)
    assert {(d.status, d.previous_status) for d in rows} == {("failed", None)}
    assert all(d.created_at == d.due_at == world.clock() for d in rows)


def test_deliveries_are_written_in_the_transaction_that_ends_the_run(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    world.save(notifications=(EmailNotification("ops", "ops@example.com", "always"),))
    run_id = world.trigger()

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("the outbox cannot be written")

    monkeypatch.setattr(Delivery, "insert_many", broken)
    with pytest.raises(RuntimeError):
        world.settle()
    # the whole transaction was rolled back: neither the end of the run nor of its attempt
    assert Run.get_by_id(run_id).status == "running"
    assert world.attempts(run_id) == [("main", 1, "running")]
    assert deliveries(run_id) == []


def test_the_previous_finished_run_decides_a_state_change(world: World) -> None:
    world.save(notifications=(EmailNotification("ops", "ops@example.com", "on_state_change"),))
    first = run_once(world)  # a first run is a change
    world.clock.advance(60)
    second = run_once(world)  # succeeded after succeeded: nothing
    world.clock.advance(60)
    fail_main(world)
    third = run_once(world)
    assert [len(deliveries(r)) for r in (first, second, third)] == [1, 0, 1]
    assert deliveries(third)[0].previous_status == "succeeded"


def test_a_killed_run_counts_as_failed(world: World) -> None:
    world.save(notifications=(EmailNotification("ops", "ops@example.com", "on_failure"),))
    world.fake.script("main", Script(duration_seconds=None))
    run_id = world.trigger()
    world.step()
    world.engine.apply(runs.kill_run(run_id, world.clock()))
    world.settle()
    [delivery] = deliveries(run_id)
    assert delivery.status == "failed"


def test_one_claim_per_try_and_a_lapsed_claim_is_taken_over(world: World) -> None:
    world.save(notifications=(EmailNotification("ops", "ops@example.com", "always"),))
    run_once(world)
    lease = timedelta(seconds=60)
    first = outbox.claim(world.clock(), lease)
    assert first is not None and first.attempts == 1
    assert outbox.claim(world.clock(), lease) is None  # claimed: nobody else takes it
    world.clock.advance(61)
    second = outbox.claim(world.clock(), lease)  # its sender died: the claim lapsed
    assert second is not None and second.id == first.id and second.attempts == 2
    assert not outbox.record_sent(first, world.clock())  # the stale claim records nothing
    assert outbox.record_sent(second, world.clock())
    assert Delivery.get_by_id(first.id).state == "sent"


def test_failed_tries_back_off_then_give_up_with_the_reason(
    world: World, make_sender: Callable[..., Sender], receiver: Recorder
) -> None:
    world.save(notifications=(WebhookNotification(receiver.url + "/hook", "always"),))
    run_id = run_once(world)
    sender = make_sender(retry_base_seconds=30, retry_max_delay_seconds=600)
    receiver.status = 503
    waits = []
    while deliveries(run_id)[0].state == "pending":
        assert drain(sender) == 1
        [delivery] = deliveries(run_id)
        waits.append((delivery.due_at - world.clock()).total_seconds())
        world.clock.now = delivery.due_at
    assert waits[:6] == [30, 60, 120, 240, 480, 600]  # doubling, at most the longest wait
    assert delivery.state == "failed" and delivery.attempts == len(receiver.received)
    assert delivery.attempts == len(waits) and world.clock() - delivery.created_at >= timedelta(
        hours=1
    )
    assert delivery.last_error.startswith(f"gave up after {delivery.attempts} attempt(s)")
    assert "answered HTTP 503" in delivery.last_error
    assert world.metric("gnomon_notifications_failed_total", kind="webhook") == 1
    assert world.metric("gnomon_notification_tries_failed_total", kind="webhook") == len(waits) - 1


def test_a_refused_request_is_not_retried(
    world: World, make_sender: Callable[..., Sender], receiver: Recorder
) -> None:
    world.save(notifications=(WebhookNotification(receiver.url, "always"),))
    run_id = run_once(world)
    receiver.status = 400
    drain(make_sender())
    [delivery] = deliveries(run_id)
    assert (delivery.state, delivery.attempts) == ("failed", 1)
    assert "answered HTTP 400" in delivery.last_error


def test_a_delivery_is_sent_once_and_shows_in_the_run_view(
    world: World, make_sender: Callable[..., Sender], receiver: Recorder
) -> None:
    world.save(notifications=(WebhookNotification(receiver.url, "always"),))
    run_id = run_once(world)
    sender = make_sender()
    assert world.metric("gnomon_notifications_pending", kind="webhook") == 0
    assert drain(sender) == 1
    assert drain(sender) == 0
    assert len(receiver.received) == 1
    [view] = queries.get_run(run_id).notifications
    assert (view.kind, view.target, view.state, view.attempts, view.last_error) == (
        "webhook", receiver.url, "sent", 1, None,
    )  # fmt: skip
    assert view.sent_at == world.clock() and view.next_attempt_at is None
    assert world.metric("gnomon_notifications_sent_total", kind="webhook") == 1


def test_pending_deliveries_show_in_the_metrics(
    world: World, make_sender: Callable[..., Sender]
) -> None:
    world.save(notifications=(EmailNotification("ops", "ops@example.com", "always"),))
    run_once(world)
    sender = make_sender()  # no SMTP host: the try fails and the delivery waits
    drain(sender)
    drain(sender)
    assert world.metric("gnomon_notifications_pending", kind="email") == 1
    [delivery] = deliveries()
    assert delivery.last_error == "no SMTP server configured (GNOMON_SMTP_HOST)"
