"""A read's whole frames as one FrameBlock: the same frames as `feed`, one chunk per read for a busy sender."""

from __future__ import annotations

import pickle

from forwarder.inputs.syslog_framing import Frame, FrameBlock, SyslogFrameSplitter


def loggen_stream(count: int) -> bytes:
    """Octet-counted RFC 5424 frames like syslog-ng's loggen sends (each ends in a newline inside its count)."""
    frames = []
    for number in range(count):
        body = b"<38>1 2026-12-06T10:22:13+00:00 localhost prg00000 1234 - - seq: %010d " % number
        body += b"P" * (299 - len(body)) + b"\n"
        frames.append(b"%d %s" % (len(body), body))
    return b"".join(frames)


def expand(items) -> list[Frame]:
    frames: list[Frame] = []
    for item in items:
        if type(item) is FrameBlock:
            frames.extend(Frame(payload, False) for payload in item)
        else:
            frames.append(item)
    return frames


def test_each_read_of_a_busy_sender_becomes_one_block_with_the_frame_it_split():
    stream = loggen_stream(5000)
    reads = [stream[offset:offset + 65536] for offset in range(0, len(stream), 65536)]
    splitter = SyslogFrameSplitter(10240)
    items_per_read = [splitter.feed_blocks(data) for data in reads]
    assert all(len(items) == 1 and type(items[0]) is FrameBlock for items in items_per_read)
    frames = expand(item for items in items_per_read for item in items)
    assert frames == SyslogFrameSplitter(10240).feed(stream)
    assert len(frames) == 5000 and frames[-1].payload.startswith(b"<38>1 ") and frames[-1].payload.endswith(b"P\n")


def test_a_block_pickles_as_its_bytes_and_bounds_and_gives_the_same_frames_back():
    [block] = SyslogFrameSplitter(10240).feed_blocks(loggen_stream(100))
    copy = pickle.loads(pickle.dumps(block, pickle.HIGHEST_PROTOCOL))
    assert type(copy) is FrameBlock and len(copy) == len(block) == 100
    assert list(copy) == list(block)
    assert len(pickle.dumps(block, pickle.HIGHEST_PROTOCOL)) < len(block.data) + 100 * 16 + 200


def test_frames_that_need_the_general_reader_keep_their_place_between_blocks():
    splitter = SyslogFrameSplitter(16)
    items = splitter.feed_blocks(b"<13>one\n<13>two\r\n<13>" + b"x" * 40 + b"\n5 <13>a<13>three\n")
    assert [type(item).__name__ for item in items] == ["FrameBlock", "Frame", "FrameBlock"]
    assert expand(items) == [Frame(b"<13>one", False), Frame(b"<13>two", False), Frame(b"<13>" + b"x" * 12, True),
                             Frame(b"<13>a", False), Frame(b"<13>three", False)]


def test_a_counted_frame_cut_by_the_end_of_the_stream_loses_its_count_not_its_bytes():
    splitter = SyslogFrameSplitter(1024)
    assert splitter.feed_blocks(b"50 <13>partial") == []
    assert splitter.buffered_bytes == len(b"50 <13>partial")
    assert splitter.finish() == [Frame(b"<13>partial", True)]
    assert splitter.feed(b"<13>fresh\n") == [Frame(b"<13>fresh", False)]


def test_digits_alone_wait_for_what_follows_them():
    splitter = SyslogFrameSplitter(1024)
    assert splitter.feed_blocks(b"12") == []
    assert expand(splitter.feed_blocks(b" <13>abcdefgh")) == [Frame(b"<13>abcdefgh", False)]
    assert splitter.feed(b"123") == []
    assert splitter.finish() == [Frame(b"123", False)]
