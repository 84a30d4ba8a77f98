"""The bound of a container's log file and whether it rotated (no engine needed)."""

from __future__ import annotations

from typing import Any

import pytest

from executor.docker.settings import DockerSettings
from executor.log_files import Tally, ends_the_log, entry_bytes, never_rotated, parse_size

MIB = 1024 * 1024

# Entries as the engine's API gives them back (`timestamps=1`), each with the line the
# json-file driver wrote for it, taken from a real engine: control bytes, HTML-unsafe
# ASCII, bytes that are not UTF-8 (written as \ufffd), U+2028, an empty line.
WRITTEN = [
    (
        b'2026-12-01T18:06:11.791661391Z \x00\x01\x1f"\\<>&\x7f\xef\xbf\xbd\xef\xbf\xbd'
        b"\xe2\x80\xa8 \xc3\xa9 ok\n",
        b'{"log":"\\u0000\\u0001\\u001f\\"\\\\\\u003c\\u003e\\u0026\x7f\\ufffd\\ufffd\\u2028 '
        b'\xc3\xa9 ok\\n","stream":"stdout","time":"2026-12-01T18:06:11.791661391Z"}\n',
    ),
    (
        b"2026-12-01T18:06:11.791752617Z \n",
        b'{"log":"\\n","stream":"stdout","time":"2026-12-01T18:06:11.791752617Z"}\n',
    ),
    (
        b"2026-12-01T18:06:11.791868661Z 0001 xxxxxxxxxx\n",
        b'{"log":"0001 xxxxxxxxxx\\n","stream":"stdout","time":"2026-12-01T18:06:11.791868661Z"}\n',
    ),
    (
        b"2026-12-01T18:06:11.891926165Z no newline",
        b'{"log":"no newline","stream":"stderr","time":"2026-12-01T18:06:11.891926165Z"}\n',
    ),
]


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("64m", 64 * MIB),
        ("512k", 512 * 1024),
        ("1g", 1024 * MIB),
        ("1.5m", 3 * MIB // 2),
        ("10MB", 10 * MIB),
        ("10 MiB", 10 * MIB),
        ("100", 100),
    ],
)
def test_parse_size(text: str, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["", "m", "-1m", "64x", "1m2"])
def test_parse_size_refuses(text: str) -> None:
    with pytest.raises(ValueError, match="is not a size"):
        parse_size(text)


@pytest.mark.parametrize(("payload", "written"), WRITTEN)
def test_an_entry_takes_at_most_its_bound(payload: bytes, written: bytes) -> None:
    assert len(written) <= entry_bytes(payload) <= len(written) + 160


def test_tally_counts_the_frames_passing_through() -> None:
    tally = Tally()
    frames = [(1, payload) for payload, _ in WRITTEN]
    assert list(tally.count(frames)) == frames
    assert tally.bytes == sum(entry_bytes(payload) for payload, _ in WRITTEN)
    assert tally.bytes >= sum(len(written) for _, written in WRITTEN)
    assert tally.last == frames[-1]


LINE = (1, b"2026-12-01T18:06:11.791868661Z 0001 xxxxxxxxxx\n")
PIECE = (1, b"2026-12-01T18:06:11.891926165Z " + b"x" * 16384)  # a piece of a longer line


@pytest.mark.parametrize(
    ("read", "last", "expected"),
    [
        ([LINE], LINE, True),
        ([], None, True),  # no output
        ([LINE], (2, LINE[1]), False),  # another stream
        ([LINE], (1, LINE[1].replace(b"0001", b"0002")), False),
        ([], LINE, False),
        ([LINE, PIECE], PIECE, False),  # the next piece may be equal: unsure
    ],
)
def test_ends_the_log(read: list[tuple[int, bytes]], last: Any, expected: bool) -> None:
    live = Tally()
    list(live.count(read))
    assert ends_the_log(live, last) is expected


@pytest.mark.parametrize(
    ("log_config", "written", "expected"),
    [
        ({"Type": "json-file", "Config": {"max-size": "10m", "max-file": "3"}}, 10 * MIB - 1, True),
        ({"Type": "json-file", "Config": {"max-size": "10m", "max-file": "3"}}, 10 * MIB, False),
        ({"Type": "json-file", "Config": {"max-size": "64m", "max-file": "2"}}, 20 * MIB, True),
        ({"Type": "json-file", "Config": {}}, 10**12, True),  # no size: never rotates
        ({"Type": "json-file"}, 10**12, True),
        ({"Type": "json-file", "Config": {"max-size": "10m"}}, 1, False),  # one file
        ({"Type": "json-file", "Config": {"max-size": "10m", "max-file": "1"}}, 1, False),
        ({"Type": "json-file", "Config": {"max-size": "lots", "max-file": "3"}}, 1, False),
        (
            {"Type": "json-file", "Config": {"max-size": "10m", "max-file": "3", "labels": "a"}},
            1,
            False,  # attributes make each entry longer than bounded
        ),
        (
            {"Type": "json-file", "Config": {"max-size": "10m", "max-file": "3", "compress": "1"}},
            1,
            True,
        ),
        ({"Type": "local", "Config": {}}, 20 * MIB - 1, True),  # its own 20m, 5 files
        ({"Type": "local", "Config": {}}, 20 * MIB, False),
        ({"Type": "local", "Config": {"max-file": "1"}}, 1, False),
        ({"Type": "journald", "Config": {}}, 1, False),
        ({}, 1, False),
    ],
)
def test_never_rotated(log_config: dict[str, Any], written: int, expected: bool) -> None:
    assert never_rotated(log_config, written) is expected


@pytest.mark.parametrize("size", ["0", "lots"])
def test_docker_settings_refuse_a_bad_log_size(size: str) -> None:
    with pytest.raises(ValueError, match="size"):
        DockerSettings(instance="test", log_max_size=size)
