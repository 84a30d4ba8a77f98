"""PagerDuty: trigger once N runs in a row failed, one dedup key, resolve at the next success."""

from __future__ import annotations

import logging
from collections.abc import Callable

import pytest

from definitions import PagerdutyNotification
from executor.fake import Script
from scheduler.notify.sender import Sender
from tests.scheduler.notify.conftest import PUBLIC_URL, deliveries, drain
from tests.scheduler.test_engine import World
from tests.support.receivers import Recorder


def test_trigger_after_n_failures_in_a_row_then_resolve_with_the_same_key(
    world: World, make_sender: Callable[..., Sender], receiver: Recorder
) -> None:
    page = PagerdutyNotification("routing-key-1", num_consecutive_failures=2, api_url=receiver.url)
    world.save(notifications=(page,))
    sender = make_sender()
    outcomes = [1, 1, 1, 0, 0, 1]  # exit codes of six runs in a row
    run_ids = []
    for exit_code in outcomes:
        world.fake.script("main", Script(exit_code=exit_code))
        run_ids.append(world.trigger())
        world.settle()
        drain(sender)
        world.clock.advance(60)
    assert [[d.action for d in deliveries(r)] for r in run_ids] == [
        [], ["trigger"], ["trigger"], ["resolve"], [], [],
    ]  # fmt: skip
    assert [r.path for r in receiver.received] == ["/v2/enqueue"] * 3
    events = [r.json() for r in receiver.received]
    assert [e["event_action"] for e in events] == ["trigger", "trigger", "resolve"]
    assert {e["dedup_key"] for e in events} == {"gnomon/job"}
    assert {e["routing_key"] for e in events} == {"routing-key-1"}
    trigger = events[0]
    assert trigger["payload"]["summary"].startswith("Gnomon: job failed")
    assert trigger["payload"]["severity"] == "error"
    assert trigger["payload"]["source"] == "gnomon"
    assert trigger["links"] == [{"href": f"{PUBLIC_URL}/runs/{run_ids[1]}", "text": "Gnomon run"}]
    assert "payload" not in events[2]
    assert all(d.state == "sent" for r in run_ids for d in deliveries(r))


def test_a_routing_key_echoed_back_is_neither_logged_nor_stored(
    world: World,
    make_sender: Callable[..., Sender],
    receiver: Recorder,
    caplog: pytest.LogCaptureFixture,
) -> None:
    key = "routing-key-that-must-stay-secret"
    world.save(notifications=(PagerdutyNotification(key, api_url=receiver.url),))
    world.fake.script("main", Script(exit_code=1))
    run_id = world.trigger()
    world.settle()
    receiver.status = 400
    receiver.answer = f'{{"status": "invalid event", "errors": ["bad key {key}"]}}'.encode()
    caplog.set_level(logging.DEBUG)
    drain(make_sender())
    [delivery] = deliveries(run_id)
    assert delivery.state == "failed"
    assert "answered HTTP 400" in delivery.last_error and "bad key ***" in delivery.last_error
    assert key not in delivery.last_error and key not in caplog.text
