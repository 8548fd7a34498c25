"""The worker pool with real forked workers, a real queue and acker: results, splits, failures, order."""

from __future__ import annotations

import logging
import os
import threading
import time

import orjson
import pytest

from forwarder.outputs.codec import EventEncoder
from forwarder.pipeline.acker import InputAcker
from forwarder.pipeline.client import AgentInfo, ClientSettings, PipelineClient
from forwarder.pipeline.event import Event
from forwarder.pipeline.queue import EventQueue
from forwarder.pipeline.workers import WorkerPool
from forwarder.stats import InputStats
from tests.integration.forwarder_process import wait_until

SETTINGS = ClientSettings("pool-test", "test")


def build_split(context: str, payload: str, stats: InputStats) -> Event | list[Event] | None:
    """'a,b' → two events, '' → none, 'boom' → raises, anything else → one event."""
    if payload == "boom":
        raise ValueError("a defect in a builder")
    if not payload:
        stats.filtered += 1
        return None
    parts = payload.split(",")
    events = [Event({"message": part, "context": context}) for part in parts]
    return events[0] if len(events) == 1 else events


class Pipeline:
    def __init__(self, stalled_after: float = 120.0) -> None:
        self.commits: list[dict] = []
        self.queue = EventQueue(10_000, 1 << 30, 1, 0.01)
        self.acker = InputAcker(self.commits.append, "test::pool-test::")
        agent = AgentInfo()
        encoder = EventEncoder()

        def make_clients(worker_agent: AgentInfo) -> list[PipelineClient]:
            return [PipelineClient(SETTINGS, None, None, [], worker_agent, InputStats("pool-test", "test"), dict)]

        self.pool = WorkerPool(2, make_clients, encoder.encode_or_replace, stalled_after=stalled_after)
        self.stats = InputStats("pool-test", "test")
        self.client = PipelineClient(SETTINGS, self.queue, self.acker, [], agent, self.stats, dict)
        self.pool.start(agent)
        self.pool.attach(self.client, 0, self.queue)

    def take(self, count: int) -> list:
        """Waits until `count` events are on the queue, then takes them."""
        wait_until(lambda: self.queue.ready_events >= count, 30, f"{count} events on the queue")
        return self.queue.get_batch(count, wait=1.0).events


@pytest.fixture
def pipeline():
    built = Pipeline()
    yield built
    built.pool.close()


def messages(events) -> list[str]:
    """What the output would send (events from workers arrive encoded, events built here are encoded now)."""
    return [orjson.loads(EventEncoder().encode(event))["message"] for event in events]


def test_a_payload_split_into_events_commits_its_cursor_when_the_last_part_is_acknowledged(pipeline):
    assert pipeline.client.publish_raw(build_split, "ctx", ["one", "a,b,c", "", "two"],
                                       [{"s": 1}, {"s": 2}, {"s": 3}, {"s": 4}])
    events = pipeline.take(5)
    assert messages(events) == ["one", "a", "b", "c", "two"]
    assert orjson.loads(events[1].encoded)["agent"]["type"] == "filebeat", "the worker ran prepare"
    for event in (events[0], events[1], events[2]):
        event.ack_token[0].done_many([event.ack_token[1]])
    assert pipeline.commits == [{"test::pool-test::s": 1}], "the split payload is not done until all its parts are"
    events[3].ack_token[0].done_many([events[3].ack_token[1]])
    assert pipeline.commits[-1] == {"test::pool-test::s": 3}, "the split payload and the empty one after it"
    events[4].ack_token[0].done_many([events[4].ack_token[1]])
    assert pipeline.commits[-1] == {"test::pool-test::s": 4}
    assert pipeline.stats.filtered == 1, "a worker's counters come back to the input's stats"


def test_in_one_process_a_chunk_with_a_cursor_per_payload_commits_the_same_way():
    """`forwarder.workers: 1` (and Windows): the same chunk built here, queued in one call."""
    commits: list[dict] = []
    queue = EventQueue(10_000, 1 << 30, 1, 0.01)
    stats = InputStats("pool-test", "test")
    client = PipelineClient(SETTINGS, queue, InputAcker(commits.append, "test::pool-test::"), [], AgentInfo(),
                            stats, dict)
    assert client.publish_raw(build_split, "ctx", ["one", "a,b,c", "", "two"], [{"s": 1}, {"s": 2}, {"s": 3}, {"s": 4}])
    events = queue.get_batch(10, wait=1.0).events
    assert [event.fields["message"] for event in events] == ["one", "a", "b", "c", "two"]
    for event in events[:3]:
        event.ack_token[0].done_many([event.ack_token[1]])
    assert commits == [{"test::pool-test::s": 1}], "the split payload is not done until all its parts are"
    events[3].ack_token[0].done_many([events[3].ack_token[1]])
    assert commits[-1] == {"test::pool-test::s": 3}, "the split payload and the empty one after it"
    events[4].ack_token[0].done_many([events[4].ack_token[1]])
    assert commits[-1] == {"test::pool-test::s": 4}
    assert stats.published == 5 and stats.filtered == 1

def test_in_one_process_a_builder_that_raises_costs_its_record_only_too(caplog):
    """Without workers a raising builder once ended the input, which then read the same record again forever."""
    queue = EventQueue(10_000, 1 << 30, 1, 0.01)
    stats = InputStats("pool-test", "test")
    client = PipelineClient(SETTINGS, queue, InputAcker(lambda commit: None, "p::"), [], AgentInfo(), stats, dict)
    assert client.publish_raw(build_split, "ctx", ["first", "boom", "last"], [{"s": 1}, {"s": 2}, {"s": 3}])
    assert [event.fields["message"] for event in queue.get_batch(10, wait=1.0).events] == ["first", "last"]
    assert stats.extra["build_failures"] == 1
    assert "pool-test: building an event failed (ValueError: a defect in a builder)" in caplog.text

def test_a_builder_that_raises_costs_its_record_only(pipeline, caplog):
    with caplog.at_level(logging.ERROR, logger="forwarder.workers"):
        assert pipeline.client.publish_raw(build_split, "ctx", ["first", "boom", "last"], {"s": 9})
        events = pipeline.take(2)
        wait_until(lambda: any("building an event failed" in r.getMessage() for r in caplog.records), 10,
                   "the failure logged through the main process")
    assert messages(events) == ["first", "last"]
    assert pipeline.stats.extra["build_failures"] == 1
    for event in events:
        event.ack_token[0].done_many([event.ack_token[1]])
    assert pipeline.commits[-1] == {"test::pool-test::s": 9}, "the failed record does not hold the cursor back"


def test_chunks_of_one_input_are_queued_in_submission_order(pipeline):
    expected = []
    for chunk in range(40):
        payloads = [f"{chunk}-{n}" for n in range(50 if chunk % 2 else 5)]
        expected += payloads
        assert pipeline.client.publish_raw(build_split, "ctx", payloads, {"chunk": chunk})
    events = pipeline.take(len(expected))
    assert messages(events) == expected


def test_a_builder_that_cannot_be_pickled_runs_in_the_main_process(pipeline, caplog):
    def local_builder(context, payload, stats):
        return Event({"message": payload.upper()})

    with caplog.at_level(logging.WARNING, logger="forwarder.workers"):
        assert pipeline.client.publish_raw(local_builder, None, ["x", "y"], {"s": 1})
    assert messages(pipeline.take(2)) == ["X", "Y"]
    assert any("cannot go to a worker process" in record.getMessage() for record in caplog.records)


def test_chunks_larger_than_a_socket_buffer_from_several_threads_all_arrive(pipeline):
    """A chunk of a megabyte fills the socket to the worker while the worker waits to send a result:
    nothing may wait on one while holding what the reader of the other needs."""
    chunks, size = 12, 500
    payload = "y" * 2000

    def submit(thread: int) -> None:
        for chunk in range(chunks):
            pipeline.client.publish_raw(build_split, "ctx", [f"{thread}-{chunk}-{n}-{payload}" for n in range(size)],
                                        {f"t{thread}": chunk})

    threads = [threading.Thread(target=submit, args=(number,)) for number in range(3)]
    for thread in threads:
        thread.start()
    received = 0
    deadline = time.monotonic() + 120
    while received < 3 * chunks * size and time.monotonic() < deadline:
        batch = pipeline.queue.get_batch(1000, wait=0.5)
        if batch is not None:
            received += len(batch)
            batch.ack_all()
    for thread in threads:
        thread.join(10)
    assert received == 3 * chunks * size
    assert {key for commit in pipeline.commits for key in commit} == {f"test::pool-test::t{n}" for n in range(3)}


def build_counting(context: None, payload: str, stats: InputStats) -> Event:
    """Counts per category in a nested mapping, the way a module processor counts unexpected categories."""
    categories = stats.extra.setdefault("categories", {})
    categories[payload] = categories.get(payload, 0) + 1
    stats.extra["built"] = stats.extra.get("built", 0) + 1
    return Event({"message": payload})


def test_counters_of_every_worker_add_up_nested_ones_too(pipeline):
    for chunk in range(20):
        assert pipeline.client.publish_raw(build_counting, None, ["a", "b", "a"] if chunk % 2 else ["c"], None)
    events = pipeline.take(40)
    assert len(events) == 40
    wait_until(lambda: pipeline.stats.extra.get("built") == 40, 10, "every worker's counts")
    assert pipeline.stats.extra["categories"] == {"a": 20, "b": 10, "c": 10}


def test_an_unpicklable_builder_keeps_its_place_among_the_chunks_of_its_input(pipeline, caplog):
    """Built here, the chunk still takes its turn: the chunks after it are not held back forever."""
    def local_builder(context, payload, stats):
        return Event({"message": payload.upper()})

    with caplog.at_level(logging.WARNING, logger="forwarder.workers"):
        for chunk in range(12):
            builder = local_builder if chunk % 3 == 1 else build_split
            assert pipeline.client.publish_raw(builder, None, [f"c{chunk}"], {"chunk": chunk})
    assert [m.lower() for m in messages(pipeline.take(12))] == [f"c{chunk}" for chunk in range(12)]


def build_hanging_once(marker: str, payload: str, stats: InputStats) -> Event:
    """'hang' never returns the first time any worker builds it (the marker file says it was tried)."""
    if payload == "hang" and not os.path.exists(marker):
        open(marker, "w").close()
        time.sleep(3600)
    return Event({"message": payload})


def test_a_worker_that_stops_answering_is_replaced_and_its_chunks_built_by_the_next(tmp_path, caplog):
    pipeline = Pipeline(stalled_after=1.0)
    try:
        first_pids = set(pipeline.pool.snapshot()["pids"])
        marker = str(tmp_path / "tried")
        cursors = [{"s": 1}, {"s": 2}, {"s": 3}]
        assert pipeline.client.publish_raw(build_hanging_once, marker, ["a", "hang", "b"], cursors)
        assert pipeline.client.publish_raw(build_hanging_once, marker, ["c"], [{"s": 4}])
        events = pipeline.take(4)
        assert messages(events) == ["a", "hang", "b", "c"]
        assert os.path.exists(marker), "the first worker really hung on the record"
        snapshot = pipeline.pool.snapshot()
        assert snapshot["restarts"] == 1
        assert len(set(snapshot["pids"]) - first_pids) == 1
        assert "has returned nothing for 1 s while holding" in caplog.text
    finally:
        pipeline.pool.close()


def build_hanging_always(context: str, payload: str, stats: InputStats) -> Event:
    if payload == "hang":
        time.sleep(3600)
    return Event({"message": payload})


def test_a_chunk_that_hangs_every_worker_is_given_up_not_built_in_the_main_process(caplog):
    """Built here, it would hang the main process: after three workers hung on it its records are given up."""
    pipeline = Pipeline(stalled_after=0.5)
    try:
        assert pipeline.client.publish_raw(build_hanging_always, "ctx", ["a", "hang"], [{"s": 1}, {"s": 2}])
        assert pipeline.client.publish_raw(build_hanging_always, "ctx", ["b"], [{"s": 3}])
        events = pipeline.take(1)
        assert messages(events) == ["b"], "the input goes on after the hung chunk"
        assert pipeline.stats.extra["hung_records"] == 2
        assert pipeline.pool.snapshot()["restarts"] == 3
        assert "2 record(s) that worker processes hung on 3 times are not sent" in caplog.text
        events[0].ack_token[0].done_many([events[0].ack_token[1]])
        assert pipeline.commits[-1] == {"test::pool-test::s": 3}, "cursors move past the given-up records"
    finally:
        pipeline.pool.close()


def build_gated(gate: str, payload: str, stats: InputStats) -> Event:
    """Waits for the gate file, so that chunks can be handed out before any of them is built."""
    deadline = time.monotonic() + 30
    while not os.path.exists(gate) and time.monotonic() < deadline:
        time.sleep(0.01)
    return Event({"message": payload})


def test_a_worker_is_not_taken_for_hung_while_the_queue_holds_its_results_back(tmp_path):
    """A full queue (the output down) stops a collector reading the results its worker has ready."""
    pipeline = Pipeline(stalled_after=1.0)
    try:
        gate = str(tmp_path / "gate")
        chunks = [[f"1{letter}" for letter in "abcde"], ["2a"], ["3a"]]
        for number, payloads in enumerate(chunks):
            assert pipeline.client.publish_raw(build_gated, gate, payloads, [{"s": number}] * len(payloads))
        assert [len(slot.pending) for slot in pipeline.pool._slots] == [2, 1], "chunks 1 and 3 on the first worker"
        pipeline.queue.max_events = 3
        open(gate, "w").close()
        wait_until(lambda: pipeline.queue.active_events == 3, 30, "the queue full")
        time.sleep(2.5)  # more than twice stalled_after: a worker wrongly taken for hung would be replaced by now
        assert pipeline.pool.snapshot()["restarts"] == 0
        delivered: list[str] = []
        while len(delivered) < 7:
            batch = pipeline.queue.get_batch(8, wait=5.0)
            assert batch is not None
            delivered += messages(batch.events)
            batch.ack_all()
        assert delivered == [*chunks[0], *chunks[1], *chunks[2]]
        assert pipeline.pool.snapshot()["restarts"] == 0
    finally:
        pipeline.pool.close()


def test_what_a_droppable_chunk_finds_no_room_for_is_dropped_and_not_counted_as_acknowledged():
    """UDP: a chunk goes even when the queue cannot take it all; the rest is dropped, counted once."""
    pipeline = Pipeline()
    pipeline.queue.max_events = 3
    try:
        assert pipeline.client.try_publish_raw(build_split, "udp", ["1", "2", "3", "4", "5"])
        wait_until(lambda: pipeline.stats.dropped == 2, 30, "two datagrams dropped")
        batch = pipeline.queue.get_batch(8, wait=5.0)
        assert messages(batch.events) == ["1", "2", "3"]
        batch.ack_all()
        assert pipeline.acker.acked == 3
        assert pipeline.stats.published == 3
        assert pipeline.acker.in_flight == 0
    finally:
        pipeline.pool.close()


def test_a_droppable_chunk_waits_a_moment_for_room_before_it_is_dropped():
    """A UDP burst: the queue is full for a moment; the socket's buffer holds the datagrams meanwhile."""
    pipeline = Pipeline()
    pipeline.queue.max_events = 3
    try:
        assert pipeline.client.try_publish_raw(build_split, "udp", ["1", "2", "3"])
        first = pipeline.take(3)
        returned = threading.Event()
        threading.Thread(target=lambda: (pipeline.client.try_publish_raw(build_split, "udp", ["4", "5"]),
                                         returned.set()), daemon=True).start()
        assert not returned.wait(0.3), "no room yet: the chunk waits"
        pipeline.queue.release(first)
        assert returned.wait(5)
        assert messages(pipeline.take(2)) == ["4", "5"]
        assert pipeline.stats.dropped == 0

        started = time.monotonic()
        assert pipeline.client.try_publish_raw(build_split, "udp", ["6", "7"])
        assert time.monotonic() - started >= 0.9, "it waited its second"
        assert pipeline.stats.dropped == 2, "then no room: dropped, counted"
    finally:
        pipeline.pool.close()
