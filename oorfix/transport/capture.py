"""Bounded, linear-time capture of one output stream.

invoke keeps all output in memory and re-joins it on every read, which is quadratic
(docs/pitfalls.md §7). A Capture keeps the first ``head_bytes`` and the last ``tail_bytes`` and only
counts the rest, so a command that prints gigabytes costs a fixed amount of memory and time
proportional to its output. Text is decoded with ``backslashreplace``: bytes that are not
UTF-8 appear as ``\\xNN`` escapes instead of being lost or raising (docs/pitfalls.md §8).
"""

from __future__ import annotations

from oorfix.results import Output

OMITTED_MARKER = "\n[... {count} bytes omitted ...]\n"
# The longest UTF-8 sequence; a cut may split one, and its pieces are dropped, not escaped.
_MAX_UTF8_LEN = 4


class Capture:
    """Collects one stream's chunks: head and tail kept, total counted."""

    def __init__(self, head_bytes: int, tail_bytes: int) -> None:
        if head_bytes < 0 or tail_bytes < 0:
            raise ValueError("head_bytes and tail_bytes must not be negative")
        self.head_bytes = head_bytes
        self.tail_bytes = tail_bytes
        self.total_bytes = 0
        self._head = bytearray()
        # Grows to at most twice tail_bytes, then drops its front in one go: amortised O(1)
        # per byte however small the chunks are.
        self._tail = bytearray()

    @property
    def buffered_bytes(self) -> int:
        """Bytes held in memory right now (bounded by head_bytes + 2 * tail_bytes)."""
        return len(self._head) + len(self._tail)

    def feed(self, data: bytes) -> None:
        """Add the next chunk of the stream."""
        self.total_bytes += len(data)
        room = self.head_bytes - len(self._head)
        if room > 0:
            self._head += data[:room]
            data = data[room:]
        if not data or self.tail_bytes == 0:
            return
        # A chunk larger than the tail only contributes its end.
        self._tail += data[-self.tail_bytes :] if len(data) > self.tail_bytes else data
        if len(self._tail) > 2 * self.tail_bytes:
            del self._tail[: len(self._tail) - self.tail_bytes]

    @property
    def truncated(self) -> bool:
        """Whether some of the stream was counted but not kept."""
        return self.total_bytes > self.head_bytes + self.tail_bytes

    def output(self) -> Output:
        """The captured stream as text, with a marker where bytes were omitted."""
        if not self.truncated:
            text = _decode(bytes(self._head + self._tail))
            return Output(text=text, total_bytes=self.total_bytes, truncated=False)
        head = _trim_incomplete_end(bytes(self._head))
        tail = _trim_continuation_start(bytes(self._tail[-self.tail_bytes :]))
        omitted = self.total_bytes - len(head) - len(tail)
        text = _decode(head) + OMITTED_MARKER.format(count=omitted) + _decode(tail)
        return Output(text=text, total_bytes=self.total_bytes, truncated=True)


def _decode(data: bytes) -> str:
    return data.decode("utf-8", errors="backslashreplace")


def _trim_continuation_start(data: bytes) -> bytes:
    """Drop the continuation bytes of a character whose start was cut off."""
    skip = 0
    while skip < min(len(data), _MAX_UTF8_LEN - 1) and 0x80 <= data[skip] <= 0xBF:
        skip += 1
    return data[skip:]


def _trim_incomplete_end(data: bytes) -> bytes:
    """Drop a character whose end was cut off (a lead byte and too few continuations)."""
    for back in range(1, min(len(data), _MAX_UTF8_LEN) + 1):
        byte = data[-back]
        if byte < 0x80:
            return data  # ASCII: nothing is split
        if byte >= 0xC0:  # a lead byte: does the sequence it starts fit?
            needed = 2 if byte < 0xE0 else 3 if byte < 0xF0 else 4
            return data[:-back] if needed > back else data
    return data
