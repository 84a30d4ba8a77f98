"""One bad stored row does not stop scheduling: it is reported and everything else fires."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta

import pytest
from flask import Flask

from scheduler import runs
from scheduler.engine import Engine
from scheduler.models import Definition, Run
from scheduler.service import utc_now
from tests.app.conftest import gnomon_of

# Once a year: between a due time set a second ago and the pass that fires it no other
# fire time falls, as a minute's start could (a catch-up then fires only the newest,
# which clashes with nothing).
NEW_YEAR = {"minutes": "0", "hours": "0", "day_of_month": "1", "month": "1",
            "day_of_week": "?", "time_zone": "UTC"}  # fmt: skip


def due_now(name: str) -> None:
    """Make `name` due at once."""
    Definition.update(next_fire_at=utc_now() - timedelta(seconds=1)).where(
        Definition.name == name
    ).execute()


def break_time_zone(name: str) -> None:
    """Store `name` with a time zone that no longer loads (as after a tzdata update)."""
    row = Definition.get_by_id(name)
    body = json.loads(row.body)
    body["schedule"]["cron_schedule"]["time_zone"] = "Atlantis/Capital"
    Definition.update(body=json.dumps(body)).where(Definition.name == name).execute()


def clash(name: str) -> None:
    """A run already stands for `name`'s next fire: firing it meets the unique key."""
    row = Definition.get_by_id(name)
    runs.start_run(name, trigger="schedule", now=utc_now(), scheduled_for=row.next_fire_at)


def yearly(make_definition: Callable[..., dict], name: str) -> dict:
    """A definition of one task firing at each new year, in UTC."""
    return make_definition(name, schedule={"cron_schedule": NEW_YEAR})


def tick(app: Flask) -> Engine:
    """One scheduling pass of `app`'s engine (its fake executor opened); the engine."""
    scheduler = gnomon_of(app).scheduler
    scheduler.executor.open(scheduler.engine)
    scheduler.engine.tick(utc_now())
    return scheduler.engine


@pytest.mark.parametrize("spoil", [break_time_zone, clash], ids=["time_zone", "unique_clash"])
def test_a_bad_definition_is_reported_and_the_others_keep_firing(
    app: Flask, make_definition: Callable[..., dict], spoil: Callable[[str], None]
) -> None:
    client = app.test_client()
    for name in ("bad", "good-1", "good-2"):
        response = client.put(
            f"/api/process_definitions/{name}", json=yearly(make_definition, name)
        )
        assert response.status_code == 201, response.text
        due_now(name)
    spoil("bad")

    engine = tick(app)

    fired = {r.definition_name for r in Run.select().where(Run.trigger == "schedule")}
    assert {"good-1", "good-2"} <= fired
    view = client.get("/api/process_definitions/bad").get_json()
    assert view["schedule_error"]
    assert client.get("/api/process_definitions/good-1").get_json()["schedule_error"] is None
    registry = gnomon_of(app).registry
    assert registry.get_sample_value("gnomon_schedule_errors_total", {"definition": "bad"}) == 1
    # tried again only after a while (or a change), so a pass does not spin on it
    engine.tick(utc_now())
    assert registry.get_sample_value("gnomon_schedule_errors_total", {"definition": "bad"}) == 1


def test_a_fixed_definition_fires_again_and_its_error_clears(
    app: Flask, make_definition: Callable[..., dict]
) -> None:
    client = app.test_client()
    body = yearly(make_definition, "tz")
    assert client.put("/api/process_definitions/tz", json=body).status_code == 201
    due_now("tz")
    break_time_zone("tz")
    engine = tick(app)
    assert client.get("/api/process_definitions/tz").get_json()["schedule_error"]

    body["schedule"]["cron_schedule"]["hours"] = "0-23"  # any change: a fresh chance
    assert client.put("/api/process_definitions/tz", json=body).status_code == 200
    due_now("tz")
    engine.tick(utc_now())

    assert client.get("/api/process_definitions/tz").get_json()["schedule_error"] is None
    assert Run.select().where(Run.definition_name == "tz").count() == 1
