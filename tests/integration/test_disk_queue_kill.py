"""queue.disk under a real SIGKILL: nothing acknowledged to its input is lost, what comes back comes in order.

A child process runs a DiskQueue with a real InputAcker. Its producer puts
numbered events; the acker's commit callback prints `C <n>` (the input was
told events up to n are safe: its cursor committed) and a consumer thread
prints `R <n>` for each event it gets, BEFORE acknowledging it to the queue
(so a printed event may be re-sent after the kill, but never an unprinted one
skipped). The parent kills the child with SIGKILL after a random number of
commits, five times, each life continuing on the same directory with a new
range of numbers; then it opens the queue itself and drains it. Every event up
to each life's last commit must be in (printed ∪ drained), and the drained
events must come out in the order they were put.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import textwrap
import threading
import time

from forwarder.outputs.codec import EventEncoder
from forwarder.pipeline.disk_queue import DiskQueue
from forwarder.pipeline.disk_queue_settings import DiskQueueSettings

LIVES = 5
# Numbers of life k are k * LIFE_RANGE + 0, 1, 2, ...: unique across lives, increasing in put order.
LIFE_RANGE = 10_000_000

CHILD = textwrap.dedent("""
    import json, sys, threading
    from pathlib import Path
    from forwarder.outputs.codec import EventEncoder
    from forwarder.pipeline.acker import InputAcker
    from forwarder.pipeline.disk_queue import DiskQueue
    from forwarder.pipeline.disk_queue_settings import DiskQueueSettings
    from forwarder.pipeline.event import Event

    directory, first = Path(sys.argv[1]), int(sys.argv[2])
    out_lock = threading.Lock()

    def say(line):
        with out_lock:
            sys.stdout.write(line + "\\n")
            sys.stdout.flush()

    def committed(updates):
        say("C %d" % updates["kill::n"])

    acker = InputAcker(committed, "kill::")
    encode = EventEncoder().encode
    queue = DiskQueue(DiskQueueSettings(path=directory, max_size=16 << 20, segment_size=1 << 20, write_ahead=512,
                                        read_ahead=256), encode)

    def consume():
        while True:
            batch = queue.get_batch(200, wait=0.5)
            if batch is None:
                continue
            say("\\n".join("R %d" % json.loads(encode(event))["n"] for event in batch.events))
            batch.ack_all()

    threading.Thread(target=consume, daemon=True).start()
    say("ready")
    n = first
    while True:
        events = []
        for _ in range(100):
            event = Event({"message": "event %d %s" % (n, "p" * 150), "n": n}, 1_700_000_000.0, {"_id": str(n)})
            event.size = 200
            event.ack_token = (acker, acker.track({"n": n}))
            events.append(event)
            n += 1
        queue.put_many(events)
""")


class ChildOutput:
    """Reads the child's stdout as it comes: the commits and the events printed before their acknowledgement."""

    def __init__(self, process: subprocess.Popen) -> None:
        self.lock = threading.Lock()
        self.commits: list[int] = []
        self.printed: set[int] = set()
        self.ready = threading.Event()
        self._thread = threading.Thread(target=self._read, args=(process.stdout,), daemon=True)
        self._thread.start()

    def _read(self, stream) -> None:
        for raw in stream:
            kind, _, number = raw.decode().strip().partition(" ")
            with self.lock:
                if kind == "C":
                    self.commits.append(int(number))
                elif kind == "R":
                    self.printed.add(int(number))
                elif kind == "ready":
                    self.ready.set()

    def commit_count(self) -> int:
        with self.lock:
            return len(self.commits)

    def finish(self) -> None:
        """After the kill: the pipe closes, and every line the child flushed before dying has been read."""
        self._thread.join(10)


def wait_until(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out after {timeout}s waiting for {what}"
        time.sleep(0.005)


def test_sigkill_at_random_moments_loses_no_event_its_input_was_told_is_safe(tmp_path):
    seed = random.randrange(1 << 30)
    chooser = random.Random(seed)
    directory = tmp_path / "queue"
    last_committed: list[tuple[int, int]] = []
    printed: set[int] = set()
    for life in range(LIVES):
        first = life * LIFE_RANGE
        child = subprocess.Popen([sys.executable, "-c", CHILD, str(directory), str(first)],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={**os.environ})
        output = ChildOutput(child)
        try:
            target = chooser.randint(1, 40)
            wait_until(lambda output=output, target=target, child=child:
                       output.commit_count() >= target or child.poll() is not None, 20,
                       f"{target} commits in life {life} (seed {seed})")
            assert child.poll() is None, child.stderr.read().decode()[-3000:]
            child.send_signal(signal.SIGKILL)
        finally:
            if child.poll() is None:
                child.kill()
            child.wait(10)
        output.finish()
        assert output.commits, f"life {life} committed nothing (seed {seed})"
        assert output.commits == sorted(output.commits), "an input's commits only move forward"
        last_committed.append((first, output.commits[-1]))
        printed |= output.printed

    encode = EventEncoder().encode
    queue = DiskQueue(DiskQueueSettings(path=directory, max_size=16 << 20, segment_size=1 << 20), encode)
    try:
        drained: list[int] = []
        while True:
            batch = queue.get_batch(1000, wait=0.5)
            if batch is None:
                break
            drained.extend(json.loads(encode(event))["n"] for event in batch.events)
            batch.ack_all()
    finally:
        queue.finish()

    assert drained == sorted(drained) and len(drained) == len(set(drained)), f"drained out of order (seed {seed})"
    delivered = printed | set(drained)
    for first, last in last_committed:
        missing = [n for n in range(first, last + 1) if n not in delivered]
        assert not missing, (f"{len(missing)} event(s) acknowledged to the input lost, first {missing[:5]} "
                             f"(seed {seed})")
