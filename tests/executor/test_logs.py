"""Log parsing, splitting, capping and batching (no engine needed)."""

from __future__ import annotations

import io
import struct
import tarfile
from collections.abc import Sequence
from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from executor.base import LogLine
from executor.logs import (
    LINE_CHUNK_BYTES,
    AttemptLog,
    LineSplitter,
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
    frames = list(read_frames(io.BytesIO(raw).read))
    assert [kind for kind, _ in frames] == [1, 2]
    assert split_timestamp(frames[0][1]) == (T0, b"out\n")
    assert split_timestamp(frames[1][1]) == (None, b"err\n")


@given(st.lists(st.binary(max_size=200_000), max_size=5))
def test_splitter_keeps_every_byte(pieces: list[bytes]) -> None:
    splitter = LineSplitter()
    lines = [line for piece in pieces for line in splitter.feed(piece)] + splitter.flush()
    data = b"".join(pieces)
    assert all(len(line) <= LINE_CHUNK_BYTES for line in lines)
    assert b"".join(lines) == data.replace(b"\n", b"")
    assert len(lines) >= data.count(b"\n")


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
    assert [line.message for line in batch[:2]] == ["12345", "1234"]
    assert batch[2].source == "gnomon" and batch[2].message.startswith("output truncated")
    assert len(batch) == 3


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
