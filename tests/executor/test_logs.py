"""Log parsing, splitting, capping and batching (no engine needed)."""

from __future__ import annotations

import io
import struct
import tarfile
from collections.abc import Sequence
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from executor.base import LogLine
from executor.logs import (
    BATCH_BYTES,
    LINE_CHUNK_BYTES,
    AttemptLog,
    EntryLedger,
    LineSplitter,
    nanos_text,
    nanos_time,
    parse_nanos,
    parse_timestamp,
    read_frames,
    split_timestamp,
    tar_members,
)

T0 = datetime(2030, 1, 1, tzinfo=UTC)


def test_parse_timestamp() -> None:
    assert parse_timestamp("2026-11-23T09:28:08.506088778Z") == datetime(
        2026, 11, 23, 9, 28, 8, 506088, tzinfo=UTC
    )
    assert parse_timestamp("2026-11-23T09:28:08Z") == datetime(2026, 11, 23, 9, 28, 8, tzinfo=UTC)
    assert parse_timestamp("2026-11-23T10:28:08.5+01:00") == datetime(
        2026, 11, 23, 9, 28, 8, 500000, tzinfo=UTC
    )
    assert parse_timestamp("0001-01-01T00:00:00Z") is None


def test_frames_and_timestamps() -> None:
    raw = b"".join(
        struct.pack(">BxxxL", kind, len(data)) + data
        for kind, data in [(1, b"2030-01-01T00:00:00.000000001Z out\n"), (2, b"x err\n")]
    )
    frames = list(read_frames(io.BytesIO(raw).read1))
    assert [kind for kind, _ in frames] == [1, 2]
    assert split_timestamp(frames[0][1]) == (int(T0.timestamp()) * 10**9 + 1, b"out\n")
    assert split_timestamp(frames[1][1]) == (None, b"err\n")


@given(
    st.lists(st.tuples(st.sampled_from([1, 2]), st.binary(max_size=300)), max_size=8),
    st.integers(1, 50),
)
def test_frames_are_cut_from_reads_of_any_size(frames: list[tuple[int, bytes]], size: int) -> None:
    raw = io.BytesIO(b"".join(struct.pack(">BxxxL", k, len(d)) + d for k, d in frames))
    assert list(read_frames(lambda n: raw.read1(min(n, size)))) == frames


@given(st.lists(st.binary(max_size=200_000), max_size=5))
def test_splitter_keeps_every_byte(pieces: list[bytes]) -> None:
    splitter = LineSplitter()
    lines = [line for piece in pieces for line in splitter.feed(piece)] + splitter.flush()
    data = b"".join(pieces)
    assert all(len(line) <= LINE_CHUNK_BYTES for line in lines)
    assert b"".join(lines) == data.replace(b"\n", b"")
    assert len(lines) >= data.count(b"\n")


def _reference_lines(data: bytes) -> list[bytes]:
    """Lines of `data` (the last one even without a newline), each cut into chunks."""
    lines = data.split(b"\n")
    if lines[-1] == b"":
        lines.pop()
    chunks = []
    for line in lines:
        while len(line) > LINE_CHUNK_BYTES:
            chunks.append(line[:LINE_CHUNK_BYTES])
            line = line[LINE_CHUNK_BYTES:]
        chunks.append(line)
    return chunks


@given(
    st.lists(
        st.one_of(
            st.binary(max_size=40).map(lambda b: b.replace(b"\n", b"") + b"\n"),
            st.sampled_from([LINE_CHUNK_BYTES - 1, LINE_CHUNK_BYTES, LINE_CHUNK_BYTES + 1]).map(
                lambda n: b"x" * n + b"\n"
            ),
            st.binary(max_size=300),
        ),
        max_size=12,
    )
)
def test_splitter_gives_the_same_lines_whatever_the_pieces(pieces: list[bytes]) -> None:
    """Whole lines (the engine's usual entry) and any other pieces, mixed."""
    splitter = LineSplitter()
    lines = [line for piece in pieces for line in splitter.feed(piece)] + splitter.flush()
    assert lines == _reference_lines(b"".join(pieces))


def test_splitter_chunks_long_lines() -> None:
    splitter = LineSplitter()
    assert splitter.feed(b"a" * 70_000) == [b"a" * LINE_CHUNK_BYTES]
    assert splitter.feed(b"b\nc") == [b"a" * (70_000 - LINE_CHUNK_BYTES) + b"b"]
    assert splitter.flush() == [b"c"]


class Batches:
    def __init__(self) -> None:
        self.batches: list[list[LogLine]] = []

    def __call__(self, lines: Sequence[LogLine]) -> None:
        self.batches.append(list(lines))


def test_cap_truncates_once_and_says_so() -> None:
    got = Batches()
    log = AttemptLog(got, lambda: T0, cap_bytes=10, batch_lines=100)
    assert log.feed("stdout", T0, b"12345\n1234\n")
    assert not log.feed("stdout", T0, b"xx\nyy\n")
    assert not log.feed("stderr", T0, b"more\n")
    log.flush()
    (batch,) = got.batches
    assert [line.message for line in batch[:3]] == ["12345", "1234", "x"]  # filled to the byte
    assert batch[3].source == "gnomon" and batch[3].message.startswith("output truncated")
    assert len(batch) == 4


def test_batches_by_size_and_skips_lines_already_stored() -> None:
    got = Batches()
    later = datetime(2030, 1, 1, 0, 0, 1, tzinfo=UTC)
    log = AttemptLog(got, lambda: T0, cap_bytes=1000, batch_lines=2, skip_until=T0)
    log.feed("stdout", T0, b"old\n")
    for n in range(5):
        log.feed("stdout", later, f"{n}\n".encode())
    log.feed("stdout", later, b"tail")
    log.end("stdout")
    log.flush()
    assert [[line.message for line in batch] for batch in got.batches] == [
        ["0", "1"],
        ["2", "3"],
        ["4", "tail"],
    ]


def test_batches_are_delivered_once_they_hold_batch_bytes() -> None:
    got = Batches()
    log = AttemptLog(got, lambda: T0, cap_bytes=4 * BATCH_BYTES, batch_lines=10_000)
    lines_a_batch = BATCH_BYTES // LINE_CHUNK_BYTES
    for _ in range(2 * lines_a_batch + 1):
        log.feed("stdout", T0, b"x" * LINE_CHUNK_BYTES + b"\n")
    log.flush()
    assert [len(batch) for batch in got.batches] == [lines_a_batch, lines_a_batch, 1]


def test_tar_members_stream_file_contents() -> None:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for name, data in [("logs", None), ("logs/a.log", b"x" * 100_000)]:
            info = tarfile.TarInfo(name)
            if data is None:
                info.type = tarfile.DIRTYPE
                archive.addfile(info)
            else:
                info.size = len(data)
                archive.addfile(info, io.BytesIO(data))
    raw = buffer.getvalue()
    chunks = [raw[i : i + 3000] for i in range(0, len(raw), 3000)]
    members = [(name, b"".join(content)) for name, content in tar_members(chunks)]
    assert members == [("logs/a.log", b"x" * 100_000)]


def test_nanos_are_exact() -> None:
    assert parse_nanos("2026-11-23T09:28:08.000000001Z") == parse_nanos(
        "2026-11-23T09:28:08.000000001+00:00"
    )
    nanos = parse_nanos("2026-11-23T10:28:08.506088778+01:00")
    assert (
        nanos == int(datetime(2026, 11, 23, 9, 28, 8, tzinfo=UTC).timestamp()) * 10**9 + 506088778
    )
    assert nanos_text(nanos) == f"{nanos // 10**9}.506088778"
    assert nanos_time(nanos) == datetime(2026, 11, 23, 9, 28, 8, 506088, tzinfo=UTC)
    assert parse_nanos("0001-01-01T00:00:00Z") is None


def test_ledger_drops_a_live_replay_and_keeps_equal_times() -> None:
    ledger = EntryLedger()
    live = [  # a long line: two pieces of one time
        ("stdout", 1, b"a\n"),
        ("stdout", 2, b"b" * 16),
        ("stdout", 2, b"b\n"),
        ("stderr", 1, b"c\n"),
    ]
    replay = [("stdout", 1, b"a\n"), ("stdout", 2, b"b" * 16), ("stdout", 2, b"b\n")]
    replay += [("stdout", 3, b"d\n")]
    taken = [entry for entry in live + replay if ledger.take_live(*entry)]
    assert taken == [*live, ("stdout", 3, b"d\n")]
    assert (ledger.last("stdout"), ledger.oldest_last()) == (3, 1)


@pytest.mark.parametrize(
    "newest",
    [
        [(5, b"e\n")],
        [(5, b"e" * 16), (5, b"e\n")],  # a long line
        [(5, b"e\n"), (5, b"f\n")],  # two lines of one time (a coarse clock)
    ],
)
def test_ledger_drops_a_live_replay_that_starts_at_the_newest_time(
    newest: list[tuple[int, bytes]],
) -> None:
    """The engine starts a rotated log file over: the replay's first entry can be the last
    one taken, of the same time (seen on Engine 20.10: ..., 5923, 5923, 5924, ...)."""
    ledger = EntryLedger()
    live = [(4, b"d\n"), *newest]
    replay = [*newest, (6, b"g\n")]
    taken = [entry for entry in live + replay if ledger.take_live("stdout", *entry)]
    assert taken == [*live, (6, b"g\n")]


def test_ledger_takes_a_long_lines_equal_pieces() -> None:
    ledger = EntryLedger()
    pieces = [(5, b"e" * 16), (5, b"e" * 16), (5, b"e\n")]
    assert [piece for piece in pieces if ledger.take_live("stdout", *piece)] == pieces


@given(st.lists(st.integers(0, 5), max_size=40), st.data())
def test_ledger_full_read_yields_exactly_what_the_live_stream_skipped(
    times: list[int], data: st.DataObject
) -> None:
    entries = sorted(times)
    # A live stream that skips one contiguous block (a rotated file it never read).
    start = data.draw(st.integers(0, len(entries)))
    end = data.draw(st.integers(start, len(entries)))
    ledger = EntryLedger()
    for index in [*range(start), *range(end, len(entries))]:
        assert ledger.take_live("stdout", entries[index], f"{index}\n".encode())
    broken_at = data.draw(st.integers(0, len(entries)))
    first = ledger.rereader()  # a full read that breaks off, then one that reads it all
    got = [n for n in entries[:broken_at] if first("stdout", n, b"")]
    again = ledger.rereader()
    got += [n for n in entries if again("stdout", n, b"")]
    assert sorted(got) == entries[start:end]
