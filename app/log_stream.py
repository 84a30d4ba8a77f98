"""Server-sent events of one attempt's log: `GET /api/tasks/{id}/log_stream`.

Each stored entry is an `event: log` whose id is its position (resume with
`Last-Event-ID`); a comment line every LOG_STREAM_HEARTBEAT_SECONDS keeps the
connection alive and lets the server notice a gone client; an `event: end`
closes the stream once the attempt has ended and all its output is sent. A
stream holds one server thread while open, so at most LOG_STREAMS_MAX are open
at once; the next gets a 503 with `Retry-After`.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

from flask import Flask, Response, current_app, request
from peewee import Database

from app.dumping import dumper
from app.errors import ApiError, invalid
from app.schemas import LogEntrySchema
from app.state import gnomon
from scheduler.overview import LogCursor, attempt_ended, log_entries_after
from scheduler.views import LogEntryView

SLOTS_KEY = "gnomon.log_streams"
BATCH = 500
POLL_SECONDS = 0.25
RETRY_AFTER_SECONDS = 5
# Entries are ordered by their own time, which a container or a callback sets: one stored
# a little late can sort before entries already sent. The stream looks back this far.
LOOKBACK = timedelta(seconds=10)
CURSOR = re.compile(r"(\d{1,20})\.(\d{1,20})\.([^\s.]{1,64})")
LOG_ENTRY = dumper(LogEntrySchema())


class StreamSlots:
    """A count of open streams that never exceeds `limit`."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.open = 0
        self._lock = threading.Lock()

    def take(self) -> bool:
        """Take a slot if one is free."""
        with self._lock:
            if self.open >= self.limit:
                return False
            self.open += 1
            return True

    def give_back(self) -> None:
        """Free a slot taken before."""
        with self._lock:
            self.open -= 1


def init_app(app: Flask) -> None:
    """Give `app` its bound on open log streams."""
    app.extensions[SLOTS_KEY] = StreamSlots(app.config["LOG_STREAMS_MAX"])


def log_stream_response(task_id: str) -> Response:
    """The event stream of attempt `task_id` (404 if unknown, 503 when too many are open)."""
    floor = parse_cursor(request.headers.get("Last-Event-ID"))
    attempt_ended(task_id)  # 404 now, not inside the stream
    slots: StreamSlots = current_app.extensions[SLOTS_KEY]
    if not slots.take():
        raise too_many_streams(slots.limit)
    state = gnomon()  # read now: the stream runs after the request context is gone
    heartbeat = state.settings["LOG_STREAM_HEARTBEAT_SECONDS"]
    events = stream_events(state.database, task_id, floor, heartbeat)
    response = Response(events, mimetype="text/event-stream")
    response.call_on_close(slots.give_back)
    response.headers["Cache-Control"] = "no-cache"
    response.headers["X-Accel-Buffering"] = "no"  # a proxy in front must not buffer events
    return response


def too_many_streams(limit: int) -> ApiError:
    """The 503 for a stream beyond LOG_STREAMS_MAX."""
    return ApiError(
        503,
        "too_many_streams",
        f"{limit} log streams are open, the most this service allows (LOG_STREAMS_MAX); "
        f"retry in {RETRY_AFTER_SECONDS} s.",
        {"limit": limit, "retry_after_seconds": RETRY_AFTER_SECONDS},
        headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
    )


def parse_cursor(value: str | None) -> LogCursor | None:
    """The position a `Last-Event-ID` names; 400 if it is not one this stream sent."""
    if not value:
        return None
    match = CURSOR.fullmatch(value.strip())
    if match is None:
        raise invalid({"Last-Event-ID": ["Not an event id of this stream."]})
    micros, seq, entry_id = match.groups()
    try:
        when = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=int(micros))
    except OverflowError as error:
        raise invalid({"Last-Event-ID": ["Not an event id of this stream."]}) from error
    return LogCursor(when, int(seq), entry_id)


def cursor_id(cursor: LogCursor) -> str:
    """The event id of a position: microseconds since the epoch, sequence, entry id."""
    micros = (cursor.when - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)
    return f"{micros}.{cursor.seq}.{cursor.id}"


def stream_events(
    database: Database, task_id: str, floor: LogCursor | None, heartbeat: float
) -> Iterator[str]:
    """The events of the stream, until the attempt has ended and every entry is sent."""
    sent: dict[str, datetime] = {}  # ids sent within LOOKBACK of the newest, and their time
    newest = floor
    last_write = time.monotonic()
    yield "retry: 2000\n\n"
    while True:
        since = newest.when - LOOKBACK if newest else None
        with database.connection_context():
            batch = log_entries_after(task_id, floor, since, sent.keys(), BATCH, newest)
        events = []
        for cursor, entry in batch.entries:
            newest = max(newest, cursor, key=_order) if newest else cursor
            sent[entry.id] = entry.when
            events.append(log_event(cursor_id(newest), entry))
        if events:  # one write a batch, not one an entry
            yield "".join(events)
            last_write = time.monotonic()
        if batch.ended:
            yield "event: end\ndata: {}\n\n"
            return
        if newest is not None:
            sent = {k: when for k, when in sent.items() if when >= newest.when - LOOKBACK}
        if len(batch.entries) < BATCH:
            time.sleep(POLL_SECONDS)
        if time.monotonic() - last_write >= heartbeat:
            yield ": heartbeat\n\n"
            last_write = time.monotonic()


def _order(cursor: LogCursor) -> tuple[datetime, int, str]:
    """The sort key of a position."""
    return cursor.when, cursor.seq, cursor.id


def log_event(event_id: str, entry: LogEntryView) -> str:
    """One `log` event: the entry as the API shows it."""
    return f"id: {event_id}\nevent: log\ndata: {json.dumps(LOG_ENTRY(entry))}\n\n"
