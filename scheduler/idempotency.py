"""Idempotency keys of triggers: one run per (definition, key) within a day.

The unique index on (definition_name, key) decides a race between two processes: the
second insert fails, its transaction (and its run) rolls back, and it answers with the
run of the first.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from scheduler.errors import Conflict
from scheduler.models import TriggerKey

KEY_LIFETIME = timedelta(hours=24)


def claimed_run(name: str, key: str | None, now: datetime) -> str | None:
    """The run a trigger of `name` with `key` started in the last 24 hours, or None.

    An older use of the key is forgotten here, so that the key can be claimed again.
    """
    if key is None:
        return None
    row = TriggerKey.get_or_none((TriggerKey.definition_name == name) & (TriggerKey.key == key))
    if row is None:
        return None
    if row.created_at > now - KEY_LIFETIME:
        return row.run_id
    TriggerKey.delete().where(TriggerKey.id == row.id).execute()
    return None


def claim(name: str, key: str | None, run_id: str, now: datetime) -> None:
    """Record that `key` started `run_id`; IntegrityError if another trigger claimed it."""
    if key is not None:
        TriggerKey.create(definition_name=name, key=key, run_id=run_id, created_at=now)


def winner(name: str, key: str, now: datetime) -> str:
    """The run of the trigger that claimed `key` first (after losing a race to it)."""
    run_id = claimed_run(name, key, now)
    if run_id is None:
        raise Conflict("the Idempotency-Key was claimed and released at once; try again")
    return run_id
