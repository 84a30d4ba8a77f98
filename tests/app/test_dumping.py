"""The compiled dumpers give exactly what the marshmallow schemas give."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from marshmallow import Schema, fields

from app.dumping import dumper
from app.schemas import ProcessSchema, TaskSchema
from scheduler.views import LogEntryView, MetadataEntryView, RunView, TaskView

WHEN = datetime(2026, 11, 23, 9, 15, 59, 123456, tzinfo=UTC)


def attempt(attempt: int, ended: datetime | None, exit_code: int | None) -> TaskView:
    """A task attempt with one log and one metadata entry."""
    return TaskView(
        id=f"7f1c2a36-0000-4000-8000-00000000000{attempt}",
        process_id="3f0c9a52-5a53-4d55-9c2e-0d1c2f4b7e11",
        definition_name="nightly",
        task_name="extract",
        attempt=attempt,
        status="failed" if ended else "running",
        created_at=WHEN,
        started_at=WHEN if attempt > 1 else None,
        ended_at=ended,
        exit_code=exit_code,
        reason="exit code 3" if exit_code else None,
        log_entries=(LogEntryView("8d7c4a8e-1f7b-4e43-9d55-4b8a4c1e2f10", WHEN, "stdout", "hi"),),
        metadata_entries=(
            MetadataEntryView("9d7c4a8e-1f7b-4e43-9d55-4b8a4c1e2f10", WHEN, "k", "v"),
        ),
    )


RUN = RunView(
    id="3f0c9a52-5a53-4d55-9c2e-0d1c2f4b7e11",
    definition_name="nightly",
    definition_version=2,
    status="running",
    started_at=WHEN,
    ended_at=None,
    trigger="manual:alice",
    reason=None,
    tasks=(attempt(1, WHEN, 3), attempt(2, None, None)),
)


ELSEWHERE = datetime(2026, 11, 23, 23, 59, 59, 999999, tzinfo=timezone(timedelta(hours=-5)))


@pytest.mark.parametrize(
    ("schema", "value"),
    [(ProcessSchema(), RUN), (ProcessSchema(), RunView(**{**RUN.__dict__, "tasks": ()}))]
    + [(TaskSchema(), task) for task in RUN.tasks]
    + [(ProcessSchema(), RunView(**{**RUN.__dict__, "started_at": ELSEWHERE, "ended_at": WHEN}))],
)
def test_a_dumper_equals_its_schema(schema: Schema, value: object) -> None:
    assert dumper(schema)(value) == schema.dump(value)


def test_an_unknown_field_type_is_refused_when_compiled() -> None:
    class Odd(Schema):
        ratio = fields.Float()

    with pytest.raises(TypeError, match="Float"):
        dumper(Odd())
