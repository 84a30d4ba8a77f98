"""GET /api/tasks/{id}/log_stream: an attempt's log as server-sent events."""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from app.config import ConfigError
from executor.fake import Script
from scheduler.service import utc_now
from tests.app.conftest import Definition, fake, task_auth

HEARTBEAT = 0.05  # seconds: a stream with nothing to say answers next() this quickly


@pytest.fixture
def app(make_app: Callable[..., Flask]) -> Flask:
    """An app whose streams beat fast and whose bound is two streams."""
    return make_app(LOG_STREAM_HEARTBEAT_SECONDS=HEARTBEAT, LOG_STREAMS_MAX=2)


@pytest.fixture
def attempt(
    app: Flask,
    put_definition: Callable[..., Definition],
    trigger: Callable[..., str],
    drive: Callable[[], None],
    client: FlaskClient,
) -> str:
    """The id of a started `extract` attempt that runs until the test finishes it."""
    fake(app).script("extract", Script(duration_seconds=None))
    put_definition()
    run_id = trigger()
    drive()
    run = client.get(f"/api/processes/{run_id}").get_json()
    return next(t["task_id"] for t in run["task"] if t["task_definition_name"] == "extract")


class Events:
    """The events of an open stream, read one at a time."""

    def __init__(self, response: TestResponse) -> None:
        self.response = response
        self.chunks: Iterator[bytes] = response.iter_encoded()
        self.pending: list[str] = []  # events received, not yet read (a chunk may hold many)

    def next(self, skip_heartbeats: bool = True) -> dict[str, Any]:
        """The next event as {"event", "id", "data"} (comments as {"comment"})."""
        while True:
            while not self.pending:
                self.pending = next(self.chunks).decode().split("\n\n")[:-1]
            event = parse_event(self.pending.pop(0))
            if "retry" in event or (skip_heartbeats and "comment" in event):
                continue
            return event

    def close(self) -> None:
        """Close the stream, as a client going away does."""
        self.response.close()


def parse_event(text: str) -> dict[str, Any]:
    """One server-sent event's fields."""
    event: dict[str, Any] = {}
    for line in text.strip("\n").split("\n"):
        name, _, value = line.partition(":")
        event[name or "comment"] = value.strip()
    if "data" in event:
        event["data"] = json.loads(event["data"])
    return event


def open_stream(client: FlaskClient, task_id: str, **headers: str) -> Events:
    """Open the stream of attempt `task_id`."""
    response = client.get(f"/api/tasks/{task_id}/log_stream", headers=headers, buffered=False)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.mimetype == "text/event-stream"
    return Events(response)


def post_log(app: Flask, client: FlaskClient, task_id: str, message: str, seconds: float) -> None:
    """Report a log entry as the attempt's container would, timed `seconds` from now."""
    when = (utc_now() + timedelta(seconds=seconds)).isoformat().replace("+00:00", "Z")
    entry = {"log_entry_id": str(uuid.uuid4()), "when": when, "source": "task", "message": message}
    response = client.post(
        f"/api/tasks/{task_id}/log_entries", json=[entry], headers=task_auth(app, task_id)
    )
    assert response.status_code == 204, response.get_json()


def test_entries_stream_as_they_are_stored_then_the_stream_ends(
    app: Flask, client: FlaskClient, attempt: str
) -> None:
    post_log(app, client, attempt, "first", -9)
    events = open_stream(client, attempt)
    first = events.next()
    assert (first["event"], first["data"]["message"], first["data"]["source"]) == (
        "log",
        "first",
        "task",
    )
    assert events.next(skip_heartbeats=False) == {"comment": "heartbeat"}
    post_log(app, client, attempt, "second", -8)
    assert events.next()["data"]["message"] == "second"
    with gnomon_connection(app):
        fake(app).finish(attempt, 0, ["printed on stdout"])
    printed = events.next()
    assert (printed["data"]["source"], printed["data"]["message"]) == (
        "stdout",
        "printed on stdout",
    )
    assert events.next()["event"] == "end"
    with pytest.raises(StopIteration):
        events.next()


def test_last_event_id_resumes_after_that_entry(
    app: Flask, client: FlaskClient, attempt: str
) -> None:
    for second, message in enumerate(["one", "two", "three"], 1):
        post_log(app, client, attempt, message, second - 10)
    events = open_stream(client, attempt)
    first = events.next()
    events.close()
    resumed = open_stream(client, attempt, **{"Last-Event-ID": first["id"]})
    assert [resumed.next()["data"]["message"] for _ in range(2)] == ["two", "three"]
    resumed.close()


def test_an_entry_stored_late_with_an_earlier_time_is_still_sent(
    app: Flask, client: FlaskClient, attempt: str
) -> None:
    post_log(app, client, attempt, "later", -5)
    events = open_stream(client, attempt)
    assert events.next()["data"]["message"] == "later"
    post_log(app, client, attempt, "earlier", -6)
    assert events.next()["data"]["message"] == "earlier"
    events.close()


def test_a_stream_with_nothing_new_reads_no_rows(
    app: Flask, client: FlaskClient, attempt: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Polling an attempt that printed nothing new counts its entries but reads none of them."""
    post_log(app, client, attempt, "first", -5)
    events = open_stream(client, attempt)
    assert events.next()["data"]["message"] == "first"
    with caplog.at_level(logging.DEBUG, logger="peewee"):
        for _ in range(3):  # each heartbeat comes after at least one more poll
            assert events.next(skip_heartbeats=False) == {"comment": "heartbeat"}
    polls = [r.getMessage() for r in caplog.records if 'FROM "log_entry"' in r.getMessage()]
    assert polls and all("COUNT(" in sql for sql in polls), polls
    post_log(app, client, attempt, "second", -6)  # stored late, with an earlier time
    assert events.next()["data"]["message"] == "second"
    events.close()


def test_streams_beyond_the_bound_get_503_with_retry_after(
    client: FlaskClient, attempt: str
) -> None:
    first, second = open_stream(client, attempt), open_stream(client, attempt)
    refused = client.get(f"/api/tasks/{attempt}/log_stream")
    assert refused.status_code == 503
    assert refused.headers["Retry-After"] == "5"
    body = refused.get_json()
    assert body["error"] == "too_many_streams" and "LOG_STREAMS_MAX" in body["message"]
    first.close()
    third = open_stream(client, attempt)  # a closed stream frees its slot
    second.close()
    third.close()


@pytest.mark.parametrize(
    ("task_id", "headers", "status", "field"),
    [
        pytest.param("not-a-uuid", {}, 400, "task_id", id="bad-id"),
        pytest.param(str(uuid.uuid4()), {}, 404, None, id="unknown"),
        pytest.param(None, {"Last-Event-ID": "garbage"}, 400, "Last-Event-ID", id="bad-cursor"),
    ],
)
def test_bad_requests_are_json_errors(
    client: FlaskClient, attempt: str, task_id: str | None, headers: dict, status: int, field: str
) -> None:
    response = client.get(f"/api/tasks/{task_id or attempt}/log_stream", headers=headers)
    assert response.status_code == status
    body = response.get_json()
    assert set(body) == {"error", "message", "details"}
    if field:
        assert field in body["details"]["fields"]


def gnomon_connection(app: Flask) -> Any:
    """A database connection for driving the fake executor from the test."""
    from tests.app.conftest import gnomon_of

    return gnomon_of(app).database.connection_context()


def test_streams_must_leave_threads_to_the_api(make_app: Callable[..., Flask]) -> None:
    with pytest.raises(ConfigError, match=r"SERVE_THREADS \(16\) must be at least LOG_STREAMS_MAX"):
        make_app(LOG_STREAMS_MAX=13)
