"""The embedded entries kept between reads: bounded by their messages' size."""

from __future__ import annotations

from datetime import UTC, datetime

from scheduler.embedded import EmbeddedEntries
from scheduler.views import LogEntryView

WHEN = datetime(2026, 12, 1, tzinfo=UTC)


def entries(chars: int) -> tuple[LogEntryView, ...]:
    """One entry of `chars` characters."""
    return (LogEntryView("e", WHEN, "stdout", "x" * chars),)


def test_the_attempts_read_longest_ago_go_first_past_the_bound() -> None:
    kept = EmbeddedEntries(max_chars=1_000)
    kept.put(("a", 1), entries(300))
    kept.put(("b", 1), entries(300))
    assert kept.get(("a", 1)) == entries(300)  # read: now the newest
    kept.put(("c", 1), entries(300))

    assert kept.get(("b", 1)) is None
    assert kept.get(("a", 1)) is not None and kept.get(("c", 1)) is not None


def test_another_number_of_entries_is_another_key() -> None:
    kept = EmbeddedEntries()
    kept.put(("a", 1), entries(1))
    assert kept.get(("a", 2)) is None
