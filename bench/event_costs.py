"""What handing work to a worker process would cost: decoding, encoding, pickling and freeing one event.

Run by `filestream_logstash.py --event-costs`: one event as the forwarder sends
it (20 lines through the real process into `ljserver -out`), rebuilt 2048 times
with distinct objects as the pipeline holds them, then each operation timed in
CPU µs per event on this thread (best of 3 passes).
"""

from __future__ import annotations

import json
import pickle
import shutil
import tempfile
import time
from collections.abc import Callable
from itertools import islice
from pathlib import Path

import orjson
from filestream_logstash import BATCH, load, run_forwarder

from forwarder.outputs.codec import EventEncoder
from forwarder.pipeline.event import Event


def received_event(events: Path) -> dict:
    """One event as the forwarder sends it: 20 lines through the real process into ljserver -out."""
    work = Path(tempfile.mkdtemp(prefix="bench-one-event-"))
    try:
        few = work / "few.ndjson"
        with open(events) as source:
            few.write_text("".join(next(source) for _ in range(20)))
        run_forwarder(few, 20, keep=False, profile=None, out=work / "received.ndjson")
        return json.loads((work / "received.ndjson").read_text().splitlines()[4])
    finally:
        shutil.rmtree(work, ignore_errors=True)


def microseconds(work: Callable, items: list) -> float:
    """CPU µs per item of `work` over `items` on this thread (the best of 3 passes)."""
    best = float("inf")
    for _ in range(3):
        started = time.process_time()
        for item in items:
            work(item)
        best = min(best, time.process_time() - started)
    return best / len(items) * 1e6


def event_costs(events: Path) -> None:
    """What moving work to a worker process would add: pickling events, next to what they cost to make."""
    with open(events, "rb") as source:
        lines = list(islice(source, BATCH))
    if len(lines) < BATCH:
        raise SystemExit(f"--event-costs needs at least {BATCH} events (--events)")
    document = received_event(events)
    timestamp = time.time()
    meta = document.pop("@metadata")
    document.pop("@timestamp")
    # The fields the forwarder adds (log, input, agent, ecs, host), as distinct objects in every event.
    added = orjson.dumps({key: value for key, value in document.items() if key not in orjson.loads(lines[0])})
    built = [Event({**orjson.loads(line), **orjson.loads(added)}, timestamp, {"_id": meta.get("_id", "x")})
             for line in lines]
    encoder = EventEncoder()
    protocol = pickle.HIGHEST_PROTOCOL
    one = pickle.dumps(built[0], protocol)
    window = pickle.dumps(built, protocol)
    raw = pickle.dumps(lines, protocol)
    encoded = [encoder.encode(event) for event in built]
    figures = {
        "orjson.loads of a line": microseconds(orjson.loads, lines),
        "EventEncoder.encode of the event": microseconds(encoder.encode, built),
        "pickle.dumps of one Event": microseconds(lambda event: pickle.dumps(event, protocol), built),
        "pickle.loads of one Event": microseconds(pickle.loads, [one] * BATCH),
        f"pickle.dumps of {BATCH} Events, per event": microseconds(
            lambda batch: pickle.dumps(batch, protocol), [built]) / BATCH,
        f"pickle.loads of {BATCH} Events, per event": microseconds(pickle.loads, [window]) / BATCH,
        f"pickle.dumps + loads of {BATCH} raw lines, per line": (microseconds(
            lambda batch: pickle.loads(pickle.dumps(batch, protocol)), [lines]) / BATCH),
        f"pickle.dumps + loads of {BATCH} encoded events, per event": (microseconds(
            lambda batch: pickle.loads(pickle.dumps(batch, protocol)), [encoded]) / BATCH),
    }
    print(f"one event as sent: {len(encoded[0]):,} bytes of JSON, {len(document)} top-level keys; "
          f"pickled Event {len(one):,} bytes, {len(window) / BATCH:,.0f} bytes an event in a {BATCH}-event "
          f"pickle, raw lines {len(raw) / BATCH:,.0f} bytes")
    for name, value in figures.items():
        print(f"  {name:<55} {value:6.1f} µs")
    copies = [pickle.loads(window) for _ in range(5)]
    started = time.process_time()
    copies.clear()
    print(f"  {'freeing one Event (5 windows of ' + str(BATCH) + ')':<55} "
          f"{(time.process_time() - started) / (5 * BATCH) * 1e6:6.1f} µs   ({load()})")
