"""Wire schemas: time formats, strict integers, status lists."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from marshmallow import ValidationError
from werkzeug.datastructures import MultiDict

from app.schemas import (
    DefinitionStateSchema,
    LogEntrySchema,
    ProcessFilterSchema,
    UTCDateTime,
    load_query,
)
from definitions.schemas import SERVER_FIELDS


@pytest.mark.parametrize(
    ("value", "wire"),
    [
        (datetime(2026, 11, 23, 9, 15, 59, 123456, tzinfo=UTC), "2026-11-23T09:15:59.123Z"),
        (datetime(2026, 11, 23, 10, 15, 59, tzinfo=timezone(timedelta(hours=1))),
         "2026-11-23T09:15:59.000Z"),
        (datetime(83, 3, 18, tzinfo=UTC), "0083-03-18T00:00:00.000Z"),
    ],
)  # fmt: skip
def test_times_dump_as_utc_with_z(value: datetime, wire: str) -> None:
    assert UTCDateTime()._serialize(value, None, None) == wire


@pytest.mark.parametrize(
    ("wire", "value"),
    [
        ("2026-11-23T09:15:59.123Z", datetime(2026, 11, 23, 9, 15, 59, 123000, tzinfo=UTC)),
        ("2026-11-23T09:15:59", datetime(2026, 11, 23, 9, 15, 59, tzinfo=UTC)),
        ("2026-11-23t10:15:59+01:00", datetime(2026, 11, 23, 9, 15, 59, tzinfo=UTC)),
        ("2026-11-23 09:15:59z", datetime(2026, 11, 23, 9, 15, 59, tzinfo=UTC)),
    ],
)
def test_times_load_with_or_without_offset(wire: str, value: datetime) -> None:
    loaded = UTCDateTime().deserialize(wire)
    assert loaded == value
    assert loaded.tzinfo == UTC


@pytest.mark.parametrize(
    "wire",
    ["2026-11-23", "2026-02-30T00:00:00Z", "9999-12-31T23:00:00-05:00", "0001-01-01T00:00:00+01:00",
     "20261123T091559Z", "2026-11-23T09:15:59+24:00", 1700000000],
)  # fmt: skip
def test_bad_times_are_refused(wire: object) -> None:
    with pytest.raises(ValidationError):
        UTCDateTime().deserialize(wire)


def test_log_entry_loads_into_scheduler_value() -> None:
    [entry] = LogEntrySchema(many=True).load([{
        "log_entry_id": "6F9619FF-8B86-D011-B42D-00C04FC964FF",
        "when": "2026-01-01T00:00:00Z",
        "source": "task",
        "message": "hi",
    }])  # fmt: skip
    assert entry.id == "6f9619ff-8b86-d011-b42d-00c04fc964ff"
    assert entry.when == datetime(2026, 1, 1, tzinfo=UTC)


def test_lone_surrogates_are_refused() -> None:
    with pytest.raises(ValidationError) as caught:
        LogEntrySchema().load({
            "log_entry_id": "6f9619ff-8b86-d011-b42d-00c04fc964ff",
            "when": "2026-01-01T00:00:00Z",
            "source": "task",
            "message": "bad \ud800",
        })  # fmt: skip
    assert "message" in caught.value.messages


def test_status_lists_split_commas() -> None:
    args = MultiDict([("allowed_statuses", "running,failed"), ("allowed_statuses", "succeeded")])
    loaded = load_query(ProcessFilterSchema(), args)
    assert loaded["allowed_statuses"] == ["running", "failed", "succeeded"]


def test_the_state_a_definition_shows_is_what_a_put_ignores() -> None:
    assert set(DefinitionStateSchema().fields) == SERVER_FIELDS
