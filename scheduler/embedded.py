"""The log entries an attempt's view embeds, kept between reads of the same attempt.

A view of an attempt embeds its newest log entries (see `queries.EMBEDDED_LOG_ENTRIES`);
reading them is most of the cost of a run list or a run (a run of 16 attempts shows
1,600 entries), and clients read the same running attempts every few seconds. An
attempt's entries are only ever added (a callback's entry already stored is
ignored), or deleted all at once with its run (`scheduler.retention`): so an attempt
holding as many entries as when they were read still embeds the same ones, and
`(attempt id, number of its entries)` tells when what was read is still good. The key
is read from the database with the attempt, so it holds across instances too.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

from scheduler.views import LogEntryView

Key = tuple[str, int]  # an attempt's id and how many log entries it has
MAX_CHARS = 16 * 1024 * 1024  # of messages kept, all attempts together (each at most 64 Ki)


class EmbeddedEntries:
    """The embedded entries of the attempts read last, by `Key`; thread-safe."""

    def __init__(self, max_chars: int = MAX_CHARS) -> None:
        self._kept: OrderedDict[Key, tuple[LogEntryView, ...]] = OrderedDict()
        self._chars = 0
        self._max = max_chars
        self._lock = threading.Lock()

    def get(self, key: Key) -> tuple[LogEntryView, ...] | None:
        """The entries kept for `key`, or None."""
        with self._lock:
            entries = self._kept.get(key)
            if entries is not None:
                self._kept.move_to_end(key)
            return entries

    def put(self, key: Key, entries: tuple[LogEntryView, ...]) -> None:
        """Keep `entries` for `key`; past the bound, drop the attempts read longest ago."""
        with self._lock:
            if key in self._kept:
                return
            self._kept[key] = entries
            self._chars += _chars(entries)
            while self._chars > self._max:
                _, dropped = self._kept.popitem(last=False)
                self._chars -= _chars(dropped)


def _chars(entries: tuple[LogEntryView, ...]) -> int:
    """What `entries` weigh: their messages' characters, and a little for each entry."""
    return sum(len(entry.message) + 64 for entry in entries)
