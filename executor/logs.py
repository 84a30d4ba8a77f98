"""Turning a container's output into ordered, bounded batches of log lines.

Nothing here talks to Docker: it parses the engine's multiplexed frames and
timestamps, splits bytes into lines, enforces the per-attempt cap and batches
lines for the listener.
"""

from __future__ import annotations

import bisect
import functools
import io
import re
import struct
import tarfile
import threading
from array import array
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import UTC, datetime, timedelta

from executor.base import LogLine

LINE_CHUNK_BYTES = 64 * 1024  # a longer line is stored as several lines of this size
BATCH_BYTES = 2 * 1024 * 1024  # a batch is delivered once its lines hold this many bytes
STREAM_SOURCES = {1: "stdout", 2: "stderr"}  # the engine's frame header stream ids
GNOMON_SOURCE = "gnomon"

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_READ_BYTES = 256 * 1024
_FRAME_HEADER = struct.Struct(">BxxxL")
_TIMESTAMP = re.compile(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)")

Deliver = Callable[[Sequence[LogLine]], None]


def parse_timestamp(text: str) -> datetime | None:
    """An engine timestamp (RFC 3339, nanoseconds) as an aware UTC datetime; None if unset."""
    match = _TIMESTAMP.match(text.strip())
    if match is None or match.group(1).startswith("0001-"):
        return None
    whole, fraction, zone = match.groups()
    micros = (fraction or "").ljust(6, "0")[:6]
    zone = "+00:00" if zone == "Z" else zone
    return datetime.fromisoformat(f"{whole}.{micros}{zone}").astimezone(UTC)


def read_frames(read_some: Callable[[int], bytes]) -> Iterator[tuple[int, bytes]]:
    """(stream id, payload) pairs from the engine's multiplexed stream format.

    `read_some(n)` returns whatever is there (at most n bytes; b"" at the end),
    so frames are cut from large reads instead of two small reads a frame.
    """
    buffer = bytearray()
    while True:
        start = 0
        while len(buffer) - start >= _FRAME_HEADER.size:
            stream_id, length = _FRAME_HEADER.unpack_from(buffer, start)
            end = start + _FRAME_HEADER.size + length
            if len(buffer) < end:
                break
            yield stream_id, bytes(buffer[start + _FRAME_HEADER.size : end])
            start = end
        del buffer[:start]
        data = read_some(_READ_BYTES)
        if not data:
            return
        buffer += data


def parse_nanos(text: str) -> int | None:
    """An engine timestamp as nanoseconds since the epoch (exact, unlike a datetime)."""
    if len(text) == 30 and text[19] == "." and text[29] == "Z" and text[20:29].isdigit():
        # The engine's own fixed form, UTC with nine digits: only the fraction changes often.
        return _whole_seconds(text[:19]) * 1_000_000_000 + int(text[20:29])
    match = _TIMESTAMP.match(text.strip())
    if match is None or match.group(1).startswith("0001-"):
        return None
    whole, fraction, zone = match.groups()
    zone = "+00:00" if zone == "Z" else zone
    seconds = int(datetime.fromisoformat(f"{whole}{zone}").timestamp())
    return seconds * 1_000_000_000 + int((fraction or "").ljust(9, "0")[:9])


@functools.lru_cache(maxsize=64)
def _whole_seconds(text: str) -> int:
    """Seconds since the epoch of a UTC `YYYY-MM-DDTHH:MM:SS`."""
    return int(datetime.fromisoformat(f"{text}+00:00").timestamp())


def nanos_time(nanos: int) -> datetime:
    """Nanoseconds since the epoch as an aware UTC datetime (to the microsecond)."""
    return _EPOCH + timedelta(microseconds=nanos // 1000)


def nanos_text(nanos: int) -> str:
    """Nanoseconds since the epoch as the engine's `since` parameter wants them."""
    return f"{nanos // 1_000_000_000}.{nanos % 1_000_000_000:09d}"


def split_timestamp(payload: bytes) -> tuple[int | None, bytes]:
    """Split a `timestamps=1` log entry into its time (nanoseconds) and its data."""
    stamp, _, data = payload.partition(b" ")
    return parse_nanos(stamp.decode("ascii", "replace")), data


class EntryLedger:
    """The times of the log entries already taken from an engine, per source, to take none twice.

    A live log stream can repeat entries, and can skip whole rotated log files;
    a full read afterwards then yields only the entries not taken yet. Times
    grow within one source (not across sources); entries with equal times are
    told apart by how many of that time were taken.
    """

    def __init__(self) -> None:
        self._taken: dict[str, array[int]] = {}  # from live streams, ascending per source
        self._filled: dict[str, array[int]] = {}  # from full reads, ascending per source
        # Per source the live stream repeats: how many entries of its last time came again.
        self._replayed: dict[str, int] = {}
        # Per source, of the entries of its newest time: the first one's data, and whether
        # the last one ended a line.
        self._newest: dict[str, tuple[bytes, bool]] = {}

    def last(self, source: str) -> int | None:
        """The time of the newest entry taken from `source`."""
        taken = self._taken.get(source)
        return taken[-1] if taken else None

    def oldest_last(self) -> int | None:
        """The oldest of the sources' newest times: reading again from there misses nothing."""
        lasts = [taken[-1] for taken in self._taken.values() if taken]
        return min(lasts) if lasts else None

    def take_live(self, source: str, nanos: int, data: bytes) -> bool:
        """From a live stream: True (and remembered) if this entry was not taken yet.

        Equal times are normal (a long line comes in several entries of one
        time); a time older than the last means the stream repeats itself, and so
        does the newest time's first entry once more after a whole line of that
        time (the engine starts a log file over where it was rotated).
        """
        taken = self._taken.setdefault(source, array("q"))
        last = taken[-1] if taken else None
        if last is None or nanos > last:
            self._replayed.pop(source, None)
            self._newest[source] = (data, data.endswith(b"\n"))
            taken.append(nanos)
            return True
        if nanos < last:
            self._replayed[source] = 0
            return False
        if source in self._replayed or self._starts_over(source, data):
            self._replayed[source] = self._replayed.get(source, 0) + 1
            if self._replayed[source] <= len(taken) - bisect.bisect_left(taken, nanos):
                return False
            del self._replayed[source]
        self._newest[source] = (self._newest[source][0], data.endswith(b"\n"))
        taken.append(nanos)
        return True

    def _starts_over(self, source: str, data: bytes) -> bool:
        """Whether an entry of the newest time repeats the first of that time, which a line
        ended already: the same entry again, not the next piece of a long line."""
        first, line_ended = self._newest[source]
        return line_ended and data == first

    def rereader(self) -> Callable[[str, int, bytes], bool]:
        """For one full read in order: True (and remembered) for each entry not taken yet.

        A full read broken off and started again yields each entry once overall:
        what it took is remembered too (in order, after all it took before).
        """
        current: dict[str, tuple[int, int]] = {}  # per source: the time read last, how often

        def is_new(source: str, nanos: int, _data: bytes) -> bool:
            previous, count = current.get(source, (-1, 0))
            count = count + 1 if nanos == previous else 1
            current[source] = (nanos, count)
            filled = self._filled.setdefault(source, array("q"))
            if count <= _count(self._taken.get(source), nanos) + _count(filled, nanos):
                return False
            filled.append(nanos)
            return True

        return is_new


def _count(times: array[int] | None, nanos: int) -> int:
    """How often `nanos` occurs in the ascending `times`."""
    if not times:
        return 0
    lo = bisect.bisect_left(times, nanos)
    return bisect.bisect_right(times, nanos, lo) - lo


class LineSplitter:
    """Bytes in, complete lines out (without the newline); long lines come out in chunks."""

    def __init__(self) -> None:
        self._pending = bytearray()

    def feed(self, data: bytes) -> list[bytes]:
        """Lines completed by `data`."""
        if data and not self._pending and data.find(b"\n") == len(data) - 1 <= LINE_CHUNK_BYTES:
            return [data[:-1]]  # one whole line, as the engine sends most: no copying
        lines = []
        *complete, rest = data.split(b"\n")
        for piece in complete:
            self._pending += piece
            lines.extend(self._chunks(final=True))
        self._pending += rest
        lines.extend(self._chunks(final=False))
        return lines

    def flush(self) -> list[bytes]:
        """Whatever is left, as a last line (the stream ended without a newline)."""
        return self._chunks(final=True) if self._pending else []

    def _chunks(self, final: bool) -> list[bytes]:
        chunks = []
        while len(self._pending) > LINE_CHUNK_BYTES:
            chunks.append(bytes(self._pending[:LINE_CHUNK_BYTES]))
            del self._pending[:LINE_CHUNK_BYTES]
        if final:
            chunks.append(bytes(self._pending))
            self._pending.clear()
        return chunks


class AttemptLog:
    """One attempt's output: split per source, capped, batched, delivered in order.

    Thread-safe: the log reader feeds it while the flusher and the finaliser
    flush it. Delivery happens under the lock, so batches never overtake each other.
    """

    def __init__(
        self,
        deliver: Deliver,
        clock: Callable[[], datetime],
        cap_bytes: int,
        batch_lines: int,
        skip_until: datetime | None = None,
    ) -> None:
        self._deliver = deliver
        self._clock = clock
        self._cap = cap_bytes
        self._batch_lines = batch_lines
        self.skip_until = skip_until
        self._lock = threading.Lock()
        self._splitters: dict[str, LineSplitter] = {}
        self._batch: list[LogLine] = []
        self._batch_bytes = 0
        self._stored = 0
        self.truncated = False

    def feed(self, source: str, when: datetime | None, data: bytes) -> bool:
        """Store the lines `data` completes; False once the cap is reached (stop reading)."""
        when = when or self._clock()
        if self.skip_until is not None and when <= self.skip_until:
            return True  # stored before a restart
        splitter = self._splitters.setdefault(source, LineSplitter())
        with self._lock:
            for line in splitter.feed(data):
                self._add(source, when, line)
            return not self.truncated

    def end(self, source: str) -> None:
        """The source ended: store its unterminated last line."""
        splitter = self._splitters.pop(source, None)
        if splitter is None:
            return
        with self._lock:
            for line in splitter.flush():
                self._add(source, self._clock(), line)

    def note(self, message: str) -> None:
        """Store a line from Gnomon itself (source `gnomon`), outside the cap."""
        with self._lock:
            self._batch.append(LogLine(self._clock(), GNOMON_SOURCE, message))

    def flush(self) -> None:
        """Deliver the lines gathered so far."""
        with self._lock:
            self._flush_locked()

    def _add(self, source: str, when: datetime, line: bytes) -> None:
        if self.truncated:
            return
        if self._stored + len(line) > self._cap:
            self.truncated = True
            room = self._cap - self._stored  # the cap is filled to the byte
            if room > 0:
                self._stored = self._cap
                self._batch.append(LogLine(when, source, line[:room].decode("utf-8", "replace")))
            self._batch.append(
                LogLine(
                    self._clock(),
                    GNOMON_SOURCE,
                    f"output truncated: this attempt printed more than {self._cap} bytes; "
                    "the rest was not stored",
                )
            )
            return
        self._stored += len(line)
        self._batch_bytes += len(line)
        self._batch.append(LogLine(when, source, line.decode("utf-8", "replace")))
        if len(self._batch) >= self._batch_lines or self._batch_bytes >= BATCH_BYTES:
            self._flush_locked()

    def _flush_locked(self) -> None:
        if self._batch:
            batch, self._batch, self._batch_bytes = self._batch, [], 0
            self._deliver(batch)


def store_entries(
    attempt_log: AttemptLog,
    frames: Iterable[tuple[int, bytes]],
    is_new: Callable[[str, int, bytes], bool],
    text: Callable[[bytes], bytes] = lambda data: data,
) -> None:
    """Feed the timestamped entries `is_new` accepts to `attempt_log`, until its cap.

    `text` takes an entry's data apart from what the engine put before it.
    """
    for stream_id, payload in frames:
        source = STREAM_SOURCES.get(stream_id, "stdout")
        nanos, data = split_timestamp(payload)
        if nanos is not None and not is_new(source, nanos, data):
            continue
        when = nanos_time(nanos) if nanos is not None else None
        if not attempt_log.feed(source, when, text(data)):
            return  # capped: stop reading rather than drain what is not kept


def resume_point(ledger: EntryLedger, attempt_log: AttemptLog, full: bool) -> str | None:
    """Where to read from: the last entry read live (unless `full`), else what was stored
    before a restart, else the beginning."""
    last = None if full else ledger.oldest_last()
    if last is not None:
        return nanos_text(last)
    skip = attempt_log.skip_until
    return None if skip is None else str(int(skip.timestamp()))  # feed() skips the rest


class _ChunkReader(io.RawIOBase):
    """A readable file over an iterable of byte chunks (a tar stream from the engine)."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._chunks = iter(chunks)
        self._rest = b""

    def readable(self) -> bool:
        """Yes."""
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        """Fill `buffer` from the next chunk."""
        while not self._rest:
            self._rest = next(self._chunks, b"")
            if not self._rest:
                return 0
        size = min(len(buffer), len(self._rest))
        buffer[:size] = self._rest[:size]
        self._rest = self._rest[size:]
        return size


def tar_members(chunks: Iterable[bytes]) -> Iterator[tuple[str, Iterator[bytes]]]:
    """(name, content in blocks) for each regular file of a streamed tar archive."""
    reader = io.BufferedReader(_ChunkReader(chunks), buffer_size=LINE_CHUNK_BYTES)
    with tarfile.open(fileobj=reader, mode="r|") as archive:
        for member in archive:
            content = archive.extractfile(member) if member.isfile() else None
            if content is not None:
                yield member.name, iter(lambda f=content: f.read(LINE_CHUNK_BYTES), b"")
