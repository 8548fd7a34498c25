"""TCP syslog framing: octet counting and delimiters detected per frame, oversized frames, resynchronisation."""

from __future__ import annotations

import random

import pytest

from forwarder.inputs.syslog_framing import Frame, SyslogFrameSplitter

VECTOR = b'93 <165>1 2003-10-11T22:14:15.003Z host app - - [exampleSDID@32473 iut="3"] An application event'


def feed_all(splitter: SyslogFrameSplitter, chunks) -> list[Frame]:
    frames = []
    for chunk in chunks:
        frames.extend(splitter.feed(chunk))
    return frames + splitter.finish()


def byte_by_byte(data: bytes) -> list[bytes]:
    return [data[i:i + 1] for i in range(len(data))]


def test_octet_counted_example_frame():
    assert SyslogFrameSplitter(1024).feed(VECTOR) == [Frame(VECTOR[3:], False)]


@pytest.mark.parametrize("chunking", ["whole", "bytes"])
def test_mixed_framing_with_stray_separators(chunking):
    stream = VECTOR + b"<13>line one\r\n\r\n\n\0" + b"4 <1>a" + b"<13>nul ended\0" + b"<13>last line\n"
    chunks = [stream] if chunking == "whole" else byte_by_byte(stream)
    assert feed_all(SyslogFrameSplitter(1024), chunks) == [
        Frame(VECTOR[3:], False),
        Frame(b"<13>line one", False),
        Frame(b"<1>a", False),
        Frame(b"<13>nul ended", False),
        Frame(b"<13>last line", False),
    ]


def test_octet_counted_message_may_contain_newlines():
    frame = b"<13>1 - - - - - - first\nsecond\n"
    assert SyslogFrameSplitter(1024).feed(b"%d %s" % (len(frame), frame)) == [Frame(frame, False)]


@pytest.mark.parametrize("line", [b"2024-05-01 starts with a date", b"0 leading zero", b"12345678901 eleven digits"])
def test_lines_starting_with_digits_that_are_not_counts(line):
    assert SyslogFrameSplitter(1024).feed(line + b"\n") == [Frame(line, False)]


def test_custom_delimiter():
    splitter = SyslogFrameSplitter(1024, delimiter=b"||")
    assert feed_all(splitter, [b"<13>a|b||<13>c|", b"|<13>d"]) == [
        Frame(b"<13>a|b", False), Frame(b"<13>c", False), Frame(b"<13>d", False),
    ]


def test_oversized_octet_frame_is_cut_and_its_content_skipped():
    inner = b"5 <1>x" * 20  # looks like frames, must not be read as such
    stream = b"%d %s" % (len(inner), inner) + b"6 <13>ok"
    for chunks in ([stream], byte_by_byte(stream)):
        assert feed_all(SyslogFrameSplitter(10), chunks) == [Frame(inner[:10], True), Frame(b"<13>ok", False)]


def test_oversized_line_is_cut_and_skipped_to_its_delimiter():
    huge = b"<13>" + b"7 <1>abc " * 1000
    chunks = [huge[i:i + 999] for i in range(0, len(huge), 999)] + [b"\n<13>next\n"]
    assert feed_all(SyslogFrameSplitter(100), chunks) == [Frame(huge[:100], True), Frame(b"<13>next", False)]


def test_line_over_the_limit_arriving_at_once_is_cut():
    assert SyslogFrameSplitter(4).feed(b"<13>abcdef\n<13>\n") == [Frame(b"<13>", True), Frame(b"<13>", False)]


def test_huge_announced_count_then_hang_up():
    splitter = SyslogFrameSplitter(1 << 20)
    assert splitter.feed(b"999999999 <13>hello") == []
    assert splitter.finish() == [Frame(b"<13>hello", True)]


def test_huge_announced_count_cut_at_the_limit_and_skipped():
    splitter = SyslogFrameSplitter(8)
    assert splitter.feed(b"999999999 <13>hello world") == [Frame(b"<13>hell", True)]
    assert splitter.feed(b"x" * 10_000) == []
    assert splitter.finish() == []


def test_end_of_stream_flushes_an_unterminated_line():
    splitter = SyslogFrameSplitter(1024)
    assert splitter.feed(b"<13>one\n<13>two") == [Frame(b"<13>one", False)]
    assert splitter.finish() == [Frame(b"<13>two", False)]
    assert splitter.finish() == []


def test_end_of_stream_while_reading_a_count_or_skipping():
    splitter = SyslogFrameSplitter(1024)
    assert splitter.feed(b"123") == []
    assert splitter.finish() == [Frame(b"123", False)]
    skipping = SyslogFrameSplitter(4)
    assert skipping.feed(b"<13>long line without end") == [Frame(b"<13>", True)]
    assert skipping.finish() == []


def test_splitter_is_reusable_after_finish():
    splitter = SyslogFrameSplitter(1024)
    splitter.feed(b"50 <13>partial")
    splitter.finish()
    assert splitter.feed(b"<13>fresh\n") == [Frame(b"<13>fresh", False)]


@pytest.mark.parametrize(("size", "delimiter"), [(0, b"\n"), (10, b"")])
def test_invalid_settings(size, delimiter):
    with pytest.raises(ValueError):
        SyslogFrameSplitter(size, delimiter)


def test_count_over_the_limit_in_front_of_lines_is_ignored_and_every_line_kept():
    lines = [b"<13>Oct 11 22:14:15 host app: line %d" % n for n in range(2000)]
    stream = b"9999999999 " + b"".join(line + b"\n" for line in lines)
    splitter = SyslogFrameSplitter(1024)
    frames = feed_all(splitter, [stream[i:i + 4096] for i in range(0, len(stream), 4096)])
    assert frames == [Frame(line, False) for line in lines]
    assert (splitter.ignored_counts, splitter.last_ignored_count) == (1, 9999999999)


def test_count_over_the_limit_ends_at_the_count_when_no_delimiter_comes_first():
    splitter = SyslogFrameSplitter(10)
    assert feed_all(splitter, byte_by_byte(b"28 <13>no delimiter in 28 bytes<13>next\n")) == [
        Frame(b"<13>no del", True), Frame(b"<13>next", False),
    ]
    assert splitter.ignored_counts == 1


def test_count_within_the_limit_is_still_trusted_with_newlines_inside():
    frame = b"<13>first\nsecond\n"
    splitter = SyslogFrameSplitter(len(frame))
    assert splitter.feed(b"%d %s<13>after\n" % (len(frame), frame)) == [Frame(frame, False), Frame(b"<13>after", False)]
    assert splitter.ignored_counts == 0


def test_buffered_bytes_are_those_of_the_unfinished_frame():
    splitter = SyslogFrameSplitter(1024)
    splitter.feed(b"<13>done\n<13>half")
    assert splitter.buffered_bytes == len(b"<13>half")
    splitter.finish()
    assert splitter.buffered_bytes == 0


@pytest.mark.parametrize("delimiter", [b"\n", b"\r\n", b"|"])
def test_a_stream_read_whole_gives_the_frames_it_gives_read_byte_by_byte(delimiter):
    """Whole reads take the frames that lie complete in the buffer in one pass; byte-sized reads never can.

    Random mixes of counted frames, counts over the limit, digit-led lines, NULs and stray separators must
    split the same either way (and in random pieces). Frames stay under max_message_size: where a frame
    is cut there does depend on how much of it had arrived (a delimiter seen, or not yet)."""
    rng = random.Random(16)
    alphabet = b"0123456789  \n\r\0ab<>|"
    for _ in range(1500):
        parts = []
        for _ in range(rng.randrange(1, 8)):
            body = bytes(rng.choice(alphabet) for _ in range(rng.randrange(0, 30)))
            kind = rng.random()
            if kind < 0.4:
                parts.append(b"%d " % len(body) + body)
            elif kind < 0.5:
                parts.append(b"%d " % rng.randrange(0, 60) + body)
            elif kind < 0.55:
                parts.append(b"9999999999 " + body)
            else:
                parts.append(body + delimiter)
        stream = b"".join(parts)
        size = 1000
        pieces, position = [], 0
        while position < len(stream):
            step = rng.choice([2, 7, 64])
            pieces.append(stream[position:position + step])
            position += step
        expected = feed_all(SyslogFrameSplitter(size, delimiter), byte_by_byte(stream))
        assert feed_all(SyslogFrameSplitter(size, delimiter), [stream]) == expected, (stream, size)
        assert feed_all(SyslogFrameSplitter(size, delimiter), pieces) == expected, (stream, size)
