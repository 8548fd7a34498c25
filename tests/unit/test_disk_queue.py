"""queue.disk: inputs acknowledged once durable, events back in order after a restart, torn tails cut, full disks."""

from __future__ import annotations

import errno
import json
import logging
import threading
import time
from pathlib import Path

import pytest

from forwarder.outputs.codec import EventEncoder
from forwarder.pipeline.acker import InputAcker
from forwarder.pipeline.disk_queue import DiskQueue
from forwarder.pipeline.disk_queue_settings import DiskQueueSettings
from forwarder.pipeline.disk_segments import SegmentFiles, scan_segment, segment_ids, segment_name
from forwarder.pipeline.event import Event
from forwarder.pipeline.queue import QueueClosed


class Committed:
    """What the input's acker committed: the highest event number whose cursor was committed."""

    def __init__(self) -> None:
        self.last = -1

    def __call__(self, updates: dict) -> None:
        self.last = max(self.last, updates["t::n"])


def tracked_events(acker: InputAcker, numbers: range, size: int = 200) -> list[Event]:
    events = []
    for n in numbers:
        event = Event({"message": f"line {n}", "n": n}, 1_700_000_000.5 + n, {"_id": f"id-{n}"})
        event.size = size
        event.ack_token = (acker, acker.track({"n": n}))
        events.append(event)
    return events


ENCODER = EventEncoder()


def document(event: Event) -> dict:
    """What the output sends for the event: the disk queue hands back exactly that."""
    return json.loads(ENCODER.encode(event))


def numbers(events: list[Event]) -> list[int]:
    return [document(event)["n"] for event in events]


def open_queue(directory: Path, files: SegmentFiles | None = None, **overrides) -> DiskQueue:
    return DiskQueue(settings(directory, **overrides), ENCODER.encode, files)


def settings(path: Path, **overrides) -> DiskQueueSettings:
    values = {"path": path, "max_size": 64 << 20, "segment_size": 1 << 20, "retry_interval": 0.01,
              "max_retry_interval": 0.05}
    values.update(overrides)
    return DiskQueueSettings(**values)


def drain(queue: DiskQueue, count: int, timeout: float = 10.0, ack: bool = True) -> list[Event]:
    got: list[Event] = []
    deadline = time.monotonic() + timeout
    while len(got) < count and time.monotonic() < deadline:
        batch = queue.get_batch(count - len(got), wait=0.2)
        if batch is None:
            continue
        got.extend(batch.events)
        if ack:
            batch.ack_all()
    return got


def wait_for(condition, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_events_come_back_whole_and_in_order_and_inputs_are_acknowledged_once_written(tmp_path):
    committed = Committed()
    acker = InputAcker(committed, "t::")
    queue = open_queue(tmp_path / "q")
    events = tracked_events(acker, range(5000))
    events[7].fields["big"] = 123456789012345678901234567890
    queue.put_many(events)
    wait_for(lambda: committed.last == 4999)
    got = drain(queue, 5000)
    assert numbers(got) == list(range(5000))
    assert document(got[7])["big"] == 123456789012345678901234567890
    third = document(got[3])
    assert third["@metadata"]["_id"] == "id-3" and third["@timestamp"] == "2023-11-14T22:13:23.500Z"
    queue.finish()


def test_a_restart_sends_again_exactly_what_the_output_did_not_acknowledge(tmp_path):
    acker = InputAcker(Committed(), "t::")
    queue = open_queue(tmp_path / "q")
    queue.put_many(tracked_events(acker, range(1000)))
    got = drain(queue, 1000, ack=False)
    assert len(got) == 1000
    # The output acknowledges the first 600 only (in two parts, out of order), then the forwarder stops.
    batch_events = got
    for event in batch_events[300:600] + batch_events[:300]:
        event.ack_token[0].done_many([event.ack_token[1]])
    queue.finish()
    reopened = open_queue(tmp_path / "q")
    again = drain(reopened, 1000, timeout=2)
    assert numbers(again) == list(range(600, 1000))
    reopened.finish()


def test_segments_roll_over_and_are_deleted_once_acknowledged(tmp_path):
    acker = InputAcker(Committed(), "t::")
    directory = tmp_path / "q"
    queue = open_queue(directory, segment_size=1 << 20, compression_level=None, write_ahead=256)
    payload = "x" * 2000
    for start in range(0, 3000, 100):
        chunk = tracked_events(acker, range(start, start + 100))
        for event in chunk:
            event.fields["payload"] = payload
        queue.put_many(chunk)
    wait_for(lambda: queue.active_events == 3000 and not queue.unwritten_events)
    assert len(segment_ids(directory)) >= 5
    got = drain(queue, 3000)
    assert numbers(got) == list(range(3000))
    wait_for(lambda: len(segment_ids(directory)) <= 1)
    assert queue.snapshot()["events"] == 0
    queue.finish()


def test_a_torn_tail_is_cut_with_a_warning_and_the_frames_before_it_are_kept(tmp_path, caplog):
    acker = InputAcker(Committed(), "t::")
    directory = tmp_path / "q"
    queue = open_queue(directory)
    queue.put_many(tracked_events(acker, range(100)))
    wait_for(lambda: not queue.unwritten_events)
    queue.put_many(tracked_events(acker, range(100, 150)))
    wait_for(lambda: not queue.unwritten_events)
    queue.finish()
    (segment,) = segment_ids(directory)
    path = directory / segment_name(segment)
    whole = path.read_bytes()
    last_frame = scan_segment(path).frames[-1]
    path.write_bytes(whole[:last_frame.offset + (last_frame.end - last_frame.offset) // 2])
    with caplog.at_level(logging.WARNING, logger="forwarder.diskqueue"):
        reopened = open_queue(directory)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "cut" in warnings[0] and str(path) in warnings[0]
    got = drain(reopened, 150, timeout=2)
    assert numbers(got) == list(range(last_frame.first_index))
    reopened.finish()


def test_a_full_queue_blocks_put_and_refuses_try_put_until_the_output_frees_a_segment(tmp_path):
    acker = InputAcker(Committed(), "t::")
    directory = tmp_path / "q"
    queue = open_queue(directory, max_size=10 << 20, segment_size=1 << 20, compression_level=None,
                               write_ahead=64)
    filler = "y" * 4000
    published = 0
    while True:
        (event,) = tracked_events(acker, range(published, published + 1), size=4100)
        event.fields["payload"] = filler
        if not queue.try_put(event):
            if not queue.unwritten_events:
                break  # refused with everything written: the disk bound, not the write-ahead one
            wait_for(lambda: not queue.unwritten_events)
            continue
        published += 1
        assert published < 10_000, "the queue never filled"
    assert queue.active_bytes > (10 << 20) - 5000
    blocked = threading.Event()
    unblocked = threading.Event()

    def put_one() -> None:
        (event,) = tracked_events(acker, range(published, published + 1), size=4100)
        blocked.set()
        queue.put(event)
        unblocked.set()

    threading.Thread(target=put_one, daemon=True).start()
    blocked.wait(5)
    assert not unblocked.wait(0.3)
    drain(queue, 600)
    assert unblocked.wait(10)
    queue.finish()


class FailingDisk(SegmentFiles):
    """A disk that refuses writes with ENOSPC while `full` is set."""

    def __init__(self) -> None:
        self.full = threading.Event()
        self.refused = 0

    def append(self, fd: int, data: bytes) -> None:
        if self.full.is_set():
            self.refused += 1
            super().append(fd, data[: len(data) // 3])  # a partial write, as a filling disk may leave
            raise OSError(errno.ENOSPC, "No space left on device")
        super().append(fd, data)


def test_a_full_disk_holds_events_back_and_leaves_no_damaged_frame(tmp_path, caplog):
    committed = Committed()
    acker = InputAcker(committed, "t::")
    disk = FailingDisk()
    directory = tmp_path / "q"
    queue = open_queue(directory, disk)
    queue.put_many(tracked_events(acker, range(100)))
    wait_for(lambda: committed.last == 99)
    disk.full.set()
    with caplog.at_level(logging.WARNING, logger="forwarder.diskqueue"):
        queue.put_many(tracked_events(acker, range(100, 200)))
        wait_for(lambda: disk.refused >= 3)
    assert committed.last == 99, "nothing is acknowledged to the input while the disk refuses it"
    assert sum("No space left on device" in r.getMessage() for r in caplog.records) == 1
    disk.full.clear()
    wait_for(lambda: committed.last == 199)
    assert queue.snapshot()["write_errors"] >= 3
    got = drain(queue, 200)
    assert numbers(got) == list(range(200))
    queue.finish()
    (segment,) = segment_ids(directory)
    assert scan_segment(directory / segment_name(segment)).damage is None


def test_put_after_close_raises_and_what_was_put_before_is_still_written(tmp_path):
    committed = Committed()
    acker = InputAcker(committed, "t::")
    queue = open_queue(tmp_path / "q")
    queue.put_many(tracked_events(acker, range(50)))
    queue.close()
    with pytest.raises(QueueClosed):
        queue.put_many(tracked_events(acker, range(50, 51)))
    queue.finish()
    assert committed.last == 49
    reopened = open_queue(tmp_path / "q")
    assert numbers(drain(reopened, 50, timeout=2)) == list(range(50))
    reopened.finish()


class UnreadableFirstFrame(SegmentFiles):
    """A disk whose first frame, read back, is garbage (damaged after it was written and checked)."""

    def __init__(self) -> None:
        self.reads = 0

    def read(self, path: Path, offset: int, end: int) -> bytes:
        self.reads += 1
        data = super().read(path, offset, end)
        return b"\x01" + b"\xff" * (len(data) - 1) if self.reads == 1 else data


def test_a_frame_that_cannot_be_read_back_is_counted_lost_and_the_rest_flows(tmp_path, caplog):
    acker = InputAcker(Committed(), "t::")
    directory = tmp_path / "q"
    queue = open_queue(directory)
    queue.put_many(tracked_events(acker, range(100)))
    wait_for(lambda: not queue.unwritten_events)
    queue.put_many(tracked_events(acker, range(100, 150)))
    wait_for(lambda: not queue.unwritten_events)
    queue.finish()
    with caplog.at_level(logging.ERROR, logger="forwarder.diskqueue"):
        reopened = open_queue(directory, UnreadableFirstFrame())
        got = drain(reopened, 50, timeout=5)
    assert numbers(got) == list(range(100, 150))
    assert reopened.snapshot()["lost_events"] == 100
    assert sum("lost" in r.getMessage() for r in caplog.records) == 1
    wait_for(lambda: reopened.active_events == 0)
    reopened.finish()


def test_damage_in_an_older_complete_segment_is_an_error_not_a_torn_write(tmp_path, caplog):
    acker = InputAcker(Committed(), "t::")
    directory = tmp_path / "q"
    queue = open_queue(directory, segment_size=1 << 20, compression_level=None, write_ahead=64)
    for start in range(0, 1000, 50):
        chunk = tracked_events(acker, range(start, start + 50))
        for event in chunk:
            event.fields["payload"] = "p" * 4000
        queue.put_many(chunk)
        wait_for(lambda: not queue.unwritten_events)
    queue.finish()
    oldest, *_ = segment_ids(directory)
    path = directory / segment_name(oldest)
    path.write_bytes(path.read_bytes()[:-10])
    with caplog.at_level(logging.WARNING, logger="forwarder.diskqueue"):
        open_queue(directory).finish()
    (record,) = [r for r in caplog.records if str(path) in r.getMessage()]
    assert record.levelno == logging.ERROR and "may have been told they were safe" in record.getMessage()
