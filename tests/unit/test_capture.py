"""Capture: bounded head + tail + byte count, linear in the output, lossless for odd bytes."""

from __future__ import annotations

import pytest

from oorfix.transport.capture import Capture


def fed(data: bytes, head: int, tail: int, chunk: int) -> Capture:
    capture = Capture(head, tail)
    for start in range(0, len(data), chunk):
        capture.feed(data[start : start + chunk])
    return capture


def test_short_output_is_kept_whole() -> None:
    output = fed(b"hello\nworld\n", 8, 8, 3).output()
    assert output.text == "hello\nworld\n"
    assert output.total_bytes == 12
    assert not output.truncated


def test_output_that_exactly_fits_is_not_truncated() -> None:
    output = fed(b"0123456789", 5, 5, 1).output()
    assert (output.text, output.truncated) == ("0123456789", False)


@pytest.mark.parametrize("chunk", [1, 3, 7, 64, 10_000])
def test_long_output_keeps_head_and_tail_and_counts_the_rest(chunk: int) -> None:
    data = b"".join(b"line %05d\n" % n for n in range(1000))  # 11 000 bytes
    output = fed(data, 22, 33, chunk).output()
    assert output.truncated
    assert output.total_bytes == len(data)
    assert output.text == (
        "line 00000\nline 00001\n"
        f"\n[... {len(data) - 55} bytes omitted ...]\n"
        "line 00997\nline 00998\nline 00999\n"
    )


def test_chunking_does_not_change_the_result() -> None:
    data = bytes(range(256)) * 100
    outputs = {fed(data, 1000, 1000, chunk).output() for chunk in (1, 2, 255, 4096, len(data))}
    assert len(outputs) == 1


def test_fifty_megabytes_in_64k_chunks_stay_bounded() -> None:
    head, tail, chunk = 64 * 1024, 64 * 1024, b"x" * (64 * 1024)
    capture = Capture(head, tail)
    peak = 0
    for _ in range(50 * 16):  # 50 MiB
        capture.feed(chunk)
        peak = max(peak, capture.buffered_bytes)
    assert capture.total_bytes == 50 * 1024 * 1024
    assert peak <= head + 2 * tail
    output = capture.output()
    assert output.total_bytes == 50 * 1024 * 1024
    assert len(output.text) < head + tail + 100


def test_a_chunk_larger_than_the_tail_is_not_kept_whole() -> None:
    capture = Capture(10, 10)
    capture.feed(b"a" * 10 + b"b" * 1_000_000 + b"c" * 10)
    assert capture.buffered_bytes <= 30
    assert capture.output().text == "a" * 10 + "\n[... 1000000 bytes omitted ...]\n" + "c" * 10


def test_non_utf8_bytes_survive_as_escapes() -> None:
    output = fed(b"ok \xff\xfe caf\xc3\xa9\n", 100, 100, 2).output()
    assert output.text == "ok \\xff\\xfe café\n"


def test_a_character_cut_by_the_head_or_tail_is_dropped_not_mangled() -> None:
    euro = "€".encode()  # 3 bytes
    data = b"ab" + euro + b"-" * 50 + euro + b"yz"
    output = fed(data, 4, 4, 5).output()  # head cuts € after 2 bytes; tail starts inside €
    assert output.text.startswith("ab\n[... ")
    assert output.text.endswith(" bytes omitted ...]\nyz")
    assert f"[... {len(data) - 4} bytes omitted" in output.text


@pytest.mark.parametrize(("head", "tail"), [(0, 0), (0, 4), (4, 0)])
def test_zero_sized_ends(head: int, tail: int) -> None:
    output = fed(b"0123456789", head, tail, 3).output()
    assert output.truncated
    assert output.total_bytes == 10
    assert output.text == "0123"[:head] + f"\n[... {10 - head - tail} bytes omitted ...]\n" + (
        "6789"[4 - tail :] if tail else ""
    )


def test_negative_sizes_are_refused() -> None:
    with pytest.raises(ValueError, match="negative"):
        Capture(-1, 10)
