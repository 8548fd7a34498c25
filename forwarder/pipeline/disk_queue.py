"""`queue.disk`: events wait on disk, so a long Logstash outage fills a disk instead of dropping syslog.

Same interface as the memory queue (`put`, `put_many`, `try_put`, `try_put_many`,
`get_batch`, `close`), different promise to the inputs: an event is
acknowledged to its input — its cursor may commit — once it is durable in a
segment (written and fsynced), not when Logstash has it. The output then
reads from the queue, and a segment file is deleted only when every event in
it is acknowledged by the output.

One writer thread turns what inputs put into frames (one frame and one
fsync per write, up to `write_ahead` events, lz4 per frame) and appends them
to the current segment, rolling over at `segment_size`. When the output is
keeping up, the writer hands the very events it wrote straight to the output
(nothing is read back); otherwise a reader thread reads frames back from the
segments, `read_ahead` events at a time. A full queue (`max_size` on disk)
blocks `put` exactly as the memory queue does; a full or failing disk is
retried with backoff, the frame cut back off the segment first, so a
segment never holds a half-written frame that later frames follow.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from forwarder.backoff import Backoff
from forwarder.disk import disk_problem, make_private_directory
from forwarder.pipeline.disk_queue_acks import Position, ReadAcks, save_position
from forwarder.pipeline.disk_queue_recovery import Recovered, recover
from forwarder.pipeline.disk_queue_segment import Segment, SegmentAppender
from forwarder.pipeline.disk_queue_settings import DiskQueueSettings
from forwarder.pipeline.disk_segments import FrameInfo, SegmentFiles, encode_frame, read_frame, segment_name
from forwarder.pipeline.event import Event
from forwarder.pipeline.queue import Batch, QueueClosed, acknowledge

log = logging.getLogger("forwarder.diskqueue")

# How long the writer waits for more events before writing a frame that is not full: fsyncs stay batched
# (at most one per this interval when events trickle in), and the added latency stays invisible.
WRITE_LINGER = 0.005
STATE_SAVE_INTERVAL = 1.0


class DiskQueue:
    # The output takes what is ready: read-ahead already batches, and waiting for more would only add latency.
    flush_min_events = 1

    def __init__(self, settings: DiskQueueSettings, encode: Callable[[Event], bytes],
                 files: SegmentFiles | None = None) -> None:
        """`encode` is the output's encoder: the queue stores what the output will send, encoded once."""
        self.settings = settings
        self._encode = encode
        self._files = files or SegmentFiles()
        self._directory = settings.path
        make_private_directory(self._directory)
        recovered = recover(self._directory, self._files, log)
        self._lock = threading.Lock()
        self._space = threading.Condition(self._lock)
        self._work = threading.Condition(self._lock)
        # The reader's own: an output taking a batch must not cut the writer's linger short (more, smaller fsyncs).
        self._refill = threading.Condition(self._lock)
        self._items = threading.Condition(self._lock)
        self._unwritten: list[Event] = []
        self._unwritten_bytes = 0
        self._ready: deque[Event] = deque()
        self._unread: deque[tuple[int, FrameInfo, int]] = deque()
        self._segments: dict[int, Segment] = {}
        self._closed = False
        self._writer_done = False
        self._position_saved: Position | None = None
        self._saved_at = 0.0
        self._appender = SegmentAppender(self._files, self._directory, settings.segment_size,
                                         recovered.next_segment_id, self._lock, self._segment_opened,
                                         self._segment_closed)
        self._raw_bytes = 0
        self._stored_bytes = 0
        self.write_errors = 0
        # Events that could not be read back (a frame damaged after it was written), or cut at start from a
        # segment that was not the one being written when the forwarder stopped.
        self.lost_events = 0
        self._load(recovered)
        self._acks = ReadAcks(recovered.position, self._advanced)
        self._writer = threading.Thread(target=self._write_loop, name="diskqueue-writer", daemon=True)
        self._reader = threading.Thread(target=self._read_loop, name="diskqueue-reader", daemon=True)
        self._writer.start()
        self._reader.start()

    def _load(self, recovered: Recovered) -> None:
        for segment_id, scan in recovered.segments:
            events = sum(frame.count for frame in scan.frames)
            self._segments[segment_id] = Segment(segment_id, scan.size, events, closed=True)
        self._unread.extend(recovered.unread)
        self._backlog = sum(frame.count - skip for _, frame, skip in recovered.unread)
        self._disk_bytes = sum(segment.size for segment in self._segments.values())

    # -- the inputs' side ------------------------------------------------------------------------------------

    def put(self, event: Event) -> None:
        self.put_many([event])

    def put_many(self, events: list[Event]) -> None:
        with self._lock:
            for index, event in enumerate(events):
                while not self._closed and not self._has_room(event.size):
                    self._space.wait()
                if self._closed:
                    raise QueueClosed(index)
                self._add(event)

    def try_put(self, event: Event) -> bool:
        return self.try_put_many([event]) == 1

    def try_put_many(self, events: list[Event]) -> int:
        with self._lock:
            if self._closed:
                raise QueueClosed()
            queued = 0
            for event in events:
                if not self._has_room(event.size):
                    break
                self._add(event)
                queued += 1
            return queued

    def _has_room(self, size: int) -> bool:
        if len(self._unwritten) >= self.settings.write_ahead:
            return False
        used = self._disk_bytes + self._unwritten_bytes
        return used == 0 or used + size <= self.settings.max_size

    def _add(self, event: Event) -> None:
        self._unwritten.append(event)
        self._unwritten_bytes += event.size
        if len(self._unwritten) == 1 or len(self._unwritten) >= self.settings.write_ahead:
            self._work.notify_all()

    # -- the output's side -----------------------------------------------------------------------------------

    def get_batch(self, max_size: int, wait: float = 1.0) -> Batch | None:
        with self._lock:
            deadline = time.monotonic() + wait
            while not self._ready:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or (self._closed and self._writer_done and not self._unread):
                    return None
                self._items.wait(remaining)
            events = [self._ready.popleft() for _ in range(min(max_size, len(self._ready)))]
            self._refill.notify_all()
        return Batch(events, self)

    def release(self, events: list[Event]) -> None:
        """Nothing to free here: acknowledged events are accounted by `ReadAcks` through their ack tokens."""

    def _advanced(self, position: Position, acknowledged: int) -> None:
        """The output's acknowledged prefix moved (under ReadAcks' lock): delete the segments it has passed."""
        with self._lock:
            self._backlog -= acknowledged
            finished = [segment for segment in self._segments.values()
                        if segment.id < position.segment
                        or (segment.id == position.segment and segment.closed and position.index >= segment.events)]
            for segment in finished:
                del self._segments[segment.id]
                self._disk_bytes -= segment.size
            if finished:
                self._space.notify_all()
        for segment in finished:
            try:
                self._files.delete(self._directory / segment_name(segment.id))
            except OSError as error:
                log.warning("%s", disk_problem(error, self._directory / segment_name(segment.id), "queue.disk.path",
                                               "delete"))

    # -- shutting down ---------------------------------------------------------------------------------------

    def close(self) -> None:
        """Refuses new events; what was put before is still written (and acknowledged to its input)."""
        with self._lock:
            self._closed = True
            self._space.notify_all()
            self._work.notify_all()
            self._refill.notify_all()
            self._items.notify_all()

    def finish(self) -> None:
        """After the output has stopped: waits for the writer, saves where the output got to."""
        self.close()
        self._writer.join(10.0)
        self._reader.join(2.0)
        if not self._writer.is_alive():  # else the writer may be saving it right now: it saved at most 1 s ago
            self._save_position(force=True)

    # -- the writer thread -----------------------------------------------------------------------------------

    def _write_loop(self) -> None:
        backoff = Backoff(self.settings.retry_interval, self.settings.max_retry_interval)
        while True:
            with self._lock:
                while not self._unwritten and not self._closed:
                    self._work.wait(STATE_SAVE_INTERVAL)
                    if not self._unwritten:
                        break
                if not self._unwritten and self._closed:
                    break
                if self._unwritten and len(self._unwritten) < self.settings.write_ahead and not self._closed:
                    self._work.wait(WRITE_LINGER)
                events = self._unwritten[:self.settings.write_ahead]
            if events and not self._write(events, backoff):
                break
            self._save_position(force=False)
        self._appender.close_file()
        with self._lock:
            self._writer_done = True
            self._items.notify_all()
            self._refill.notify_all()  # the reader ends once the writer has: at once, not at its next poll

    def _write(self, events: list[Event], backoff: Backoff) -> bool:
        """Writes and fsyncs one frame; False when the queue closed while the disk kept failing."""
        frame, raw_size = encode_frame(events, self._encode, self.settings.compression_level)
        failing = False
        while True:
            try:
                segment, info = self._appender.append(frame, len(events))
                break
            except OSError as error:
                self.write_errors += 1
                delay = backoff.next_delay()
                if not failing:
                    log.warning("%s; the queue keeps the events in memory (inputs wait) and retries in %.1fs",
                                disk_problem(error, self._directory, "queue.disk.path"), delay)
                failing = True
                with self._lock:
                    if self._closed:
                        log.error("disk queue closed while its disk failed: %d event(s) were not written and are "
                                  "not acknowledged to their inputs", len(self._unwritten))
                        return False
                    self._work.wait(delay)
        if failing:
            log.info("the disk queue writes again to %s", self._directory)
        backoff.reset()
        acknowledge(events)
        with self._lock:
            del self._unwritten[:len(events)]
            self._unwritten_bytes -= sum(event.size for event in events)
            self._disk_bytes += len(frame)
            self._raw_bytes += raw_size
            self._stored_bytes += len(frame)
            self._backlog += len(events)
            self._space.notify_all()
            if not self._unread and len(self._ready) + len(events) <= max(self.settings.read_ahead, len(events)):
                self._hand_over(events, segment.id, info.first_index, info.written_ms)
            else:
                self._unread.append((segment.id, info, 0))
                self._refill.notify_all()
        return True

    def _segment_opened(self, segment: Segment) -> None:
        with self._lock:
            self._segments[segment.id] = segment
            self._disk_bytes += segment.size

    def _segment_closed(self, segment: Segment, size: int) -> None:
        with self._lock:
            segment.closed = True
            segment.size = size
            position = self._acks.position
        if position.segment == segment.id and position.index >= segment.events:
            self._advanced(position, 0)

    def _hand_over(self, events: list[Event], segment_id: int, first_index: int, written_ms: int) -> None:
        """Under the lock: a frame's events go to the output, with read-side ack tokens."""
        first = self._acks.add_frame(len(events), segment_id, first_index, written_ms)
        for offset, event in enumerate(events):
            event.ack_token = (self._acks, first + offset)
        self._ready.extend(events)
        self._items.notify_all()

    # -- the reader thread -----------------------------------------------------------------------------------

    def _read_loop(self) -> None:
        while True:
            with self._lock:
                while not (self._unread and len(self._ready) < self.settings.read_ahead):
                    if self._closed and self._writer_done:
                        return
                    self._refill.wait(0.5)
                segment_id, info, skip = self._unread[0]
            try:
                events = read_frame(self._files, self._directory / segment_name(segment_id), info)[skip:]
            except Exception as error:  # a frame that passed its CRC at start cannot be decoded: keep the rest flowing
                log.error("disk queue: cannot read back a frame of %s at byte %d (%s); its %d event(s) are lost "
                          "(counted in /stats queue.lost_events)", segment_name(segment_id), info.offset, error,
                          info.count - skip)
                self._skip_frame(segment_id, info, skip)
                continue
            with self._lock:
                self._unread.popleft()
                self._hand_over(events, segment_id, info.first_index + skip, info.written_ms)

    def _skip_frame(self, segment_id: int, info: FrameInfo, skip: int) -> None:
        """An unreadable frame's events count as lost and as acknowledged, so the position moves past them."""
        count = info.count - skip
        with self._lock:
            self._unread.popleft()
            self.lost_events += count
            first = self._acks.add_frame(count, segment_id, info.first_index + skip, info.written_ms)
        self._acks.done_many(range(first, first + count))

    # -- state and statistics --------------------------------------------------------------------------------

    def _save_position(self, force: bool) -> None:
        position = self._acks.position
        if position == self._position_saved:
            return
        now = time.monotonic()
        if not force and now - self._saved_at < STATE_SAVE_INTERVAL:
            return
        try:
            save_position(self._directory, position)
        except OSError as error:
            log.warning("%s", disk_problem(error, self._directory / "state.json", "queue.disk.path"))
            return
        self._position_saved, self._saved_at = Position(position.segment, position.index), now

    @property
    def full(self) -> bool:
        with self._lock:
            return (len(self._unwritten) >= self.settings.write_ahead
                    or self._disk_bytes + self._unwritten_bytes >= self.settings.max_size)

    @property
    def unwritten_events(self) -> int:
        """Events put but not yet durable: their inputs have not been acknowledged yet."""
        return len(self._unwritten)

    @property
    def active_events(self) -> int:
        return len(self._unwritten) + self._backlog

    @property
    def active_bytes(self) -> int:
        return self._disk_bytes + self._unwritten_bytes

    @property
    def ready_events(self) -> int:
        return len(self._ready)

    def snapshot(self) -> dict[str, Any]:
        oldest = self._acks.oldest_written_ms()
        with self._lock:
            if oldest is None and self._unread:
                oldest = self._unread[0][1].written_ms
            return {
                "type": "disk",
                "events": len(self._unwritten) + self._backlog,
                "unwritten_events": len(self._unwritten),
                "bytes": self._disk_bytes + self._unwritten_bytes,
                "segments": len(self._segments),
                "oldest_event_age_s": None if oldest is None else round(max(0.0, time.time() - oldest / 1000), 1),
                "compression_ratio": round(self._raw_bytes / self._stored_bytes, 2) if self._stored_bytes else None,
                "write_errors": self.write_errors,
                "lost_events": self.lost_events,
            }
