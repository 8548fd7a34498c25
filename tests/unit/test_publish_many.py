"""Publishing a chunk: one cursor for the chunk, committed only once every event of it is acknowledged."""

from __future__ import annotations

import threading

from forwarder.pipeline.client import AgentInfo, ClientSettings
from forwarder.pipeline.event import Event
from forwarder.pipeline.pipeline import Pipeline
from forwarder.pipeline.queue import EventQueue
from forwarder.stats import StatsTable


def drop_odd(event: Event) -> Event | None:
    return None if event.fields["n"] % 2 else event


def test_a_chunk_is_queued_in_order_and_its_cursor_waits_for_the_last_acknowledgement(harness):
    client = harness.connect("test", input_id="chunks")
    assert client.publish_many([Event({"n": n}) for n in range(6)], {"object": 6})
    first = harness.take(4, ack=True)
    assert [e.fields["n"] for e in first] == [0, 1, 2, 3]
    assert client.committed() == {}
    rest = harness.take(2, ack=False)
    assert [e.fields["n"] for e in rest] == [4, 5]
    assert client.committed() == {}
    for event in rest:
        acker, sequence = event.ack_token
        acker.done(sequence)
    assert client.committed() == {"object": 6}
    assert client.stats.published == 6


def test_events_a_processor_drops_do_not_hold_back_the_chunk_cursor(harness):
    client = harness.connect("test", input_id="dropping", processors=[drop_odd])
    assert client.publish_many([Event({"n": n}) for n in range(5)], {"object": 5})
    kept = harness.take(3)
    assert [e.fields["n"] for e in kept] == [0, 2, 4]
    assert client.committed() == {"object": 5}
    assert client.publish_many([Event({"n": 1})], {"object": 6})
    assert client.committed() == {"object": 6}
    assert client.stats.filtered == 3


def test_a_chunk_cut_by_shutdown_never_commits_its_cursor(harness):
    small = EventQueue(2, 1 << 20, flush_min_events=1, flush_timeout=0.0)
    pipeline = Pipeline(small, harness.registry, [], AgentInfo(name="test-host"), StatsTable())
    client = pipeline.connect(ClientSettings(input_id="cut", input_type="test"))
    outcome: list[bool] = []
    worker = threading.Thread(target=lambda: outcome.append(client.publish_many(
        [Event({"n": n}) for n in range(5)], {"object": 5})), daemon=True)
    worker.start()
    batch = small.get_batch(5, wait=5)
    assert batch is not None and len(batch) == 2
    small.close()
    worker.join(5)
    assert outcome == [False]
    batch.ack_all()
    assert client.committed() == {}
    assert client.stats.published == 2
