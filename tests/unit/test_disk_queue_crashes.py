"""The disk queue's crash matrix: a crash at any file operation loses no event that its input was told was safe.

A crash is simulated at the N-th file operation (create, append, fsync,
truncate, read, delete), N chosen at random, ×100. At that moment the
"process" dies: the operation in progress may leave a partial write, every
open segment loses a random part of what was written since its last fsync
(what a power cut does to the page cache), and every later operation of the
dead queue fails. A new queue is then opened on the same directory: every
event acknowledged to its input must come out of the two lives together, and
the second life must deliver in order.
"""

from __future__ import annotations

import json
import random
import threading
import time
from pathlib import Path

from forwarder.outputs.codec import EventEncoder
from forwarder.pipeline.acker import InputAcker
from forwarder.pipeline.disk_queue import DiskQueue
from forwarder.pipeline.disk_queue_settings import DiskQueueSettings
from forwarder.pipeline.disk_segments import SegmentFiles
from forwarder.pipeline.event import Event

ITERATIONS = 100
EVENTS = 300


class Crash(BaseException):
    """The process died: not an error any code of the queue may handle."""


class CrashingDisk(SegmentFiles):
    def __init__(self, crash_at: int, chooser: random.Random) -> None:
        self.crash_at = crash_at
        self.chooser = chooser
        self.calls = 0
        self.crashed = threading.Event()
        self.lock = threading.Lock()
        self.paths: dict[int, Path] = {}
        self.synced: dict[int, int] = {}

    def _step(self, fd: int | None = None, data: bytes | None = None) -> None:
        with self.lock:
            if self.crashed.is_set():
                raise Crash()
            self.calls += 1
            if self.calls < self.crash_at:
                return
            self.die(fd, data)
            raise Crash()

    def die(self, fd: int | None = None, data: bytes | None = None) -> None:
        """The operation in progress half done, then the page cache lost: what was not fsynced may be gone."""
        self.crashed.set()
        if fd is not None and data:
            SegmentFiles.append(self, fd, data[: self.chooser.randrange(len(data))])
        for open_fd, path in self.paths.items():
            size = path.stat().st_size
            lost_from = self.chooser.randint(self.synced.get(open_fd, 0), size)
            with open(path, "r+b") as file:
                file.truncate(lost_from)

    def create(self, path: Path) -> int:
        self._step()
        fd = super().create(path)
        self.paths[fd] = path
        self.synced[fd] = path.stat().st_size
        return fd

    def append(self, fd: int, data: bytes) -> None:
        self._step(fd, data)
        super().append(fd, data)

    def sync(self, fd: int) -> None:
        self._step()
        super().sync(fd)
        self.synced[fd] = self.paths[fd].stat().st_size

    def truncate(self, fd: int, size: int) -> None:
        self._step()
        super().truncate(fd, size)

    def close(self, fd: int) -> None:
        self.paths.pop(fd, None)
        super().close(fd)

    def read(self, path: Path, offset: int, end: int) -> bytes:
        self._step()
        return super().read(path, offset, end)

    def delete(self, path: Path) -> None:
        self._step()
        super().delete(path)


ENCODER = EventEncoder()


def number(event: Event) -> int:
    return json.loads(ENCODER.encode(event))["n"]


class Committed:
    def __init__(self) -> None:
        self.last = -1

    def __call__(self, updates: dict) -> None:
        self.last = max(self.last, updates["t::n"])


def settings(path: Path) -> DiskQueueSettings:
    # Small segments and frames, so that roll-overs, deletions and read-backs all happen within 300 events.
    return DiskQueueSettings(path=path, max_size=16 << 20, segment_size=16 << 10, read_ahead=64, write_ahead=32,
                             retry_interval=0.01, max_retry_interval=0.02, compression_level=0)


def first_life(directory: Path, chooser: random.Random) -> tuple[int, set[int]]:
    """Runs until the crash; returns (the last event number acknowledged to the input, the numbers delivered)."""
    committed = Committed()
    acker = InputAcker(committed, "t::")
    disk = CrashingDisk(chooser.randint(1, 120), chooser)
    queue = DiskQueue(settings(directory), ENCODER.encode, disk)
    delivered: set[int] = set()

    def produce() -> None:
        try:
            for start in range(0, EVENTS, 20):
                events = []
                for n in range(start, start + 20):
                    event = Event({"n": n, "message": f"event {n} " + "z" * chooser.randint(0, 300)})
                    event.size = 400
                    event.ack_token = (acker, acker.track({"n": n}))
                    events.append(event)
                queue.put_many(events)
        except BaseException:  # the queue died with the process
            return

    producer = threading.Thread(target=produce, daemon=True)
    producer.start()
    unfinished = None  # a batch acknowledged in part, finished at the next turn (as an output retries it)
    try:
        while not disk.crashed.is_set() and len(delivered) < EVENTS:
            if unfinished is not None:
                delivered.update(number(event) for event in unfinished.pending)
                unfinished.ack_all()
                unfinished = None
            batch = queue.get_batch(50, wait=0.05)
            if batch is None:
                continue
            taken = len(batch) if chooser.random() < 0.7 else chooser.randint(0, len(batch))
            delivered.update(number(event) for event in batch.events[:taken])
            batch.ack_through(taken)
            if taken < len(batch):
                unfinished = batch
    except Crash:
        pass
    if not disk.crashed.is_set():
        with disk.lock:
            disk.die()
    return committed.last, delivered


def test_a_crash_at_any_file_operation_loses_no_event_acknowledged_to_its_input(tmp_path, monkeypatch):
    # The dead queue's threads end with Crash; that is the simulated death, not a failure to report.
    default_hook = threading.excepthook
    monkeypatch.setattr(threading, "excepthook",
                        lambda args: None if args.exc_type is Crash else default_hook(args))
    seed = random.randrange(1 << 30)
    chooser = random.Random(seed)
    for iteration in range(ITERATIONS):
        directory = tmp_path / f"q{iteration}"
        acknowledged, delivered = first_life(directory, chooser)
        second = DiskQueue(settings(directory), ENCODER.encode)
        replayed: list[int] = []
        deadline = time.monotonic() + 10
        while second.active_events and time.monotonic() < deadline:
            batch = second.get_batch(500, wait=0.05)
            if batch is not None:
                replayed.extend(number(event) for event in batch.events)
                batch.ack_all()
        assert not second.active_events, f"seed {seed}, iteration {iteration}: the second life did not drain"
        second.finish()
        missing = set(range(acknowledged + 1)) - delivered - set(replayed)
        assert not missing, f"seed {seed}, iteration {iteration}: lost {sorted(missing)[:10]}"
        assert replayed == sorted(replayed), f"seed {seed}, iteration {iteration}: out of order"
