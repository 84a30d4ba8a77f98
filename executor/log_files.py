"""A container's log file on the engine: whether a live read of it missed nothing.

The engine's live log stream (`follow`) can skip entries when the log file
rotates (or is truncated in place), and can end early without an error, before
the log's last entry (seen on Engine 20.10 under load). So a live read missed
nothing if it went from the first entry to the log's last one (`ends_the_log`,
against a read of the last entry alone) and the file never rotated. A file
that rotates is renamed and read by the live stream to its end before the
next one, and it rotates once it holds `max-size` bytes: so if what the live
stream read takes less than `max-size` bytes in the file, it never rotated.
That size is bounded from the entries read back: the json-file driver writes
an entry as `{"log":"…","stream":"stdout","time":"…"}` and escapes a byte into
at most 6 (`\\u00XX`, or `\\ufffd` for a byte that is not UTF-8); the local
driver writes the bytes as they are with a few dozen bytes of framing.
Nothing here talks to Docker.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

_ROTATING_DRIVERS = ("json-file", "local")  # the drivers whose files the bound describes
_ENTRY_BYTES = 100  # the json-file framing of one entry (74 at most) and a margin
_ESCAPED_BYTES = 6  # the most a byte of data takes in the file
# Printable ASCII the json-file driver writes as it is (`"`, `\` and its HTML-safe
# `<`, `>`, `&` it escapes, as it does control characters and other bytes).
_PLAIN = bytes(c for c in range(0x20, 0x7F) if chr(c) not in '"\\<>&')
# Options that leave an entry's framing as above and say when the file rotates.
_SIZE_OPTIONS = frozenset({"max-size", "max-file", "compress", "mode", "max-buffer-size"})
_LOCAL_DEFAULTS = {"max-size": "20m", "max-file": "5"}  # the local driver's own
_SIZE = re.compile(r"(\d+(?:\.\d+)?) ?([kmgtp])?i?b?", re.IGNORECASE)

Frame = tuple[int, bytes]  # an entry as the engine's API gives it: stream id, timestamp and data


def parse_size(text: str) -> int:
    """Bytes of an engine size such as `10m` or `1.5g` (binary units); ValueError if not one."""
    match = _SIZE.fullmatch(text.strip())
    if match is None:
        raise ValueError(f"{text!r} is not a size such as 64m, 512k or 1g")
    number, unit = match.groups()
    return int(float(number) * 1024 ** (" kmgtp".index(unit.lower()) if unit else 0))


def entry_bytes(payload: bytes) -> int:
    """At most the bytes the engine's log file holds for one entry read back as `payload`."""
    special = len(payload.translate(None, _PLAIN))  # the bytes that are not plain
    return len(payload) + (_ESCAPED_BYTES - 1) * special + _ENTRY_BYTES


class Tally:
    """Adds up `entry_bytes` of the frames passing through `count`, and keeps the last."""

    def __init__(self) -> None:
        self.bytes = 0
        self.last: Frame | None = None

    def count(self, frames: Iterable[Frame]) -> Iterator[Frame]:
        """The same frames, each counted as it passes."""
        for frame in frames:
            self.bytes += entry_bytes(frame[1])
            self.last = frame
            yield frame


def ends_the_log(live: Tally, last: Frame | None) -> bool:
    """Whether a read that went through `live` reached the log's `last` entry.

    Entries are told apart by stream, time and text, and the last must end a line:
    a longer line is written in pieces of one time, and two pieces can be equal.
    """
    return live.last == last and (last is None or last[1].endswith(b"\n"))


def never_rotated(log_config: Mapping[str, Any], written: int) -> bool:
    """Whether a log file of this (inspected) config, `written` bytes at most, never rotated.

    False when unsure: another driver, options that add to each entry (`labels`,
    `env`, ...), or a single file (`max-file` 1), which is truncated in place
    under a reader that lags behind.
    """
    driver, options = log_config.get("Type"), dict(log_config.get("Config") or {})
    if driver not in _ROTATING_DRIVERS or not set(options) <= _SIZE_OPTIONS:
        return False
    if driver == "local":
        options = {**_LOCAL_DEFAULTS, **options}
    if "max-size" not in options:
        return True  # json-file without a size never rotates
    try:
        max_size, max_files = parse_size(options["max-size"]), int(options.get("max-file", 1))
    except ValueError:
        return False
    return max_files >= 2 and written < max_size
