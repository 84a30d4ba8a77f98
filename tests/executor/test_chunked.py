"""Taking an HTTP/1.1 chunked body apart from raw reads of any size."""

from __future__ import annotations

import io
import itertools
from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st
from urllib3.exceptions import ProtocolError

from executor.docker.chunked import ChunkedBody, raw_reader


def encoded(chunks: list[bytes]) -> bytes:
    """`chunks` in chunked transfer coding, with its last chunk."""
    return b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in chunks) + b"0\r\n\r\n"


def raw_reads(raw: bytes, cuts: list[int]) -> Callable[[int], bytes]:
    """A raw read that gives `raw` in the pieces `cuts` makes, then b"" (the end)."""
    bounds = [0, *sorted(c % (len(raw) + 1) for c in cuts), len(raw)]
    pieces = iter([raw[a:b] for a, b in itertools.pairwise(bounds) if b > a])
    return lambda size: next(pieces, b"")


def body(read_some: Callable[[int], bytes]) -> bytes:
    """Everything `read_some` gives until the end."""
    parts = []
    while part := read_some(1 << 16):
        parts.append(part)
    return b"".join(parts)


@given(
    st.lists(st.binary(min_size=1, max_size=300), max_size=30),
    st.lists(st.integers(0, 20_000), max_size=40),
)
def test_the_body_comes_out_whole_however_the_reads_cut_it(
    chunks: list[bytes], cuts: list[int]
) -> None:
    raw = encoded(chunks)
    assert body(ChunkedBody(raw_reads(raw, cuts)).read_some) == b"".join(chunks)


def test_a_chunk_extension_is_ignored_and_nothing_is_read_past_the_last_chunk() -> None:
    raw = b"5;name=value\r\nhello\r\n0\r\n\r\n"
    reads = iter([raw, b"never read"])
    assert body(ChunkedBody(lambda size: next(reads)).read_some) == b"hello"


@pytest.mark.parametrize(
    "raw",
    [
        b"5\r\nhel",  # the connection ends inside a chunk
        b"5\r\nhelloXX0\r\n\r\n",  # no CRLF after the chunk's data
        b"zz\r\nhello\r\n",  # not a size
        b"1" * 40,  # a size line that never ends
    ],
)
def test_a_broken_body_is_a_protocol_error(raw: bytes) -> None:
    with pytest.raises(ProtocolError):
        body(ChunkedBody(raw_reads(raw, [])).read_some)


def test_a_read_of_a_closed_response_is_a_protocol_error() -> None:
    def closed(size: int) -> bytes:
        raise ValueError("read of closed file")

    with pytest.raises(ProtocolError, match="closed"):
        ChunkedBody(closed).read_some(10)


class _Decoded:
    """http.client's response as urllib3 holds it: chunked or not, over a connection."""

    def __init__(self, chunked: bool, connection: object) -> None:
        self.chunked, self.chunk_left, self.fp = chunked, None, connection


class _Raw:
    def __init__(self, decoded: _Decoded) -> None:
        self._fp = decoded

    def read1(self, size: int) -> bytes:
        return b"through urllib3"


class _Response:
    def __init__(self, decoded: _Decoded) -> None:
        self.raw = _Raw(decoded)


def test_a_fresh_chunked_body_on_a_buffered_connection_is_taken_apart_here() -> None:
    connection = io.BufferedReader(io.BytesIO(encoded([b"here", b" and there"])))
    assert body(raw_reader(_Response(_Decoded(True, connection)))) == b"here and there"


@pytest.mark.parametrize(
    ("chunked", "connection"),
    [
        (False, io.BufferedReader(io.BytesIO(b"here"))),  # a body framed by its length
        (True, object()),  # a connection without read1 (another transport)
    ],
)
def test_any_other_body_is_read_through_urllib3(chunked: bool, connection: object) -> None:
    assert raw_reader(_Response(_Decoded(chunked, connection)))(10) == b"through urllib3"
