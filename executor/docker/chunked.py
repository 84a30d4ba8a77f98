"""An HTTP/1.1 chunked response body read straight from its connection.

The engine sends a followed log one entry a chunk, and http.client decodes
chunks one call at a time (a line read, a size parsed, a read, a CRLF read, each
through urllib3): for 84,000 lines of output that was a third of the reading.
Here the connection is read in large blocks and the framing taken out of each
block at once. The response is not usable by http.client afterwards: it is
closed, never given back to the pool.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from urllib3.exceptions import ProtocolError

_CRLF = b"\r\n"
_SIZE_DIGITS = 16  # the most hex digits (and extensions) a chunk size line may take here


class ChunkedBody:
    """`read_some(n)` over the body of a chunked response, from the raw `read_raw(n)`."""

    def __init__(self, read_raw: Callable[[int], bytes]) -> None:
        self._read_raw = read_raw
        self._raw = b""  # read from the connection, not taken apart yet
        self._left = 0  # bytes of the current chunk's data still to come
        self._in_chunk = False  # inside a chunk: its data, then its CRLF
        self._ended = False

    def read_some(self, size: int) -> bytes:
        """Body bytes, as many as one read of up to `size` raw bytes gave; b"" at its end.

        ProtocolError if the connection ends inside the body or the framing is not HTTP's.
        """
        while not self._ended:
            try:
                data = self._read_raw(size)
            except ValueError as error:  # the response was closed under the read
                raise ProtocolError(f"log stream closed: {error}") from error
            if not data:
                raise ProtocolError("the engine closed the log stream inside its body")
            body = self._take_apart(self._raw + data)
            if body:
                return body
        return b""

    def _take_apart(self, raw: bytes) -> bytes:
        """The chunks' data in `raw`; keeps what is left of an unfinished size line."""
        pieces, at, end = [], 0, len(raw)
        while at < end:
            if self._left:
                take = min(self._left, end - at)
                pieces.append(raw[at : at + take])
                at, self._left = at + take, self._left - take
                continue
            if self._in_chunk:  # the chunk's data ended: its CRLF follows
                if end - at < 2:
                    break
                if raw[at : at + 2] != _CRLF:
                    raise ProtocolError("chunk data not followed by CRLF")
                at, self._in_chunk = at + 2, False
                continue
            line_end = raw.find(_CRLF, at, at + _SIZE_DIGITS + 2)
            if line_end < 0:
                if end - at > _SIZE_DIGITS:
                    raise ProtocolError("chunk size line too long")
                break
            self._left = _chunk_size(raw[at:line_end])
            at = line_end + 2
            if not self._left:
                self._ended = True  # trailers, if any, are not read: the response is closed
                break
            self._in_chunk = True
        self._raw = raw[at:]
        return b"".join(pieces)


def _chunk_size(line: bytes) -> int:
    try:
        return int(line.split(b";", 1)[0], 16)
    except ValueError:
        raise ProtocolError(f"not a chunk size: {line[:20]!r}") from None


def raw_reader(response: Any) -> Callable[[int], bytes]:
    """`read_some(n)` of the body of a streamed `requests` response: the chunked one
    taken apart here, any other through urllib3."""
    decoded = getattr(response.raw, "_fp", None)  # http.client's response under urllib3's
    fresh = getattr(decoded, "chunked", False) and decoded.chunk_left is None  # nothing read
    connection = getattr(decoded, "fp", None)
    if fresh and hasattr(connection, "read1"):
        return ChunkedBody(connection.read1).read_some
    return response.raw.read1  # type: ignore[no-any-return]
