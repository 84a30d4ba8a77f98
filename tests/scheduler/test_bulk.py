"""Bulk inserts: the ids a batch of container output gets."""

from __future__ import annotations

import uuid

from scheduler.bulk import batch_ids


def test_batch_ids_are_distinct_version_4_uuids_counting_up() -> None:
    first, second = batch_ids(1000), batch_ids(1000)
    assert len(set(first + second)) == 2000
    for text in first + second:
        assert str(uuid.UUID(text)) == text and uuid.UUID(text).version == 4
    assert first == sorted(first) and first[0][:24] != second[0][:24]
    assert batch_ids(0) == []
