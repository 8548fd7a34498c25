"""The Secure Endpoint stream builder runs wherever the pipeline builds events: from its arguments alone."""

from __future__ import annotations

import json
import multiprocessing
import pickle
from concurrent.futures import ProcessPoolExecutor

from forwarder.inputs.secure_endpoint_stream_events import RECORD_KIND, build_stream_event
from forwarder.pipeline.client import build_events
from forwarder.stats import InputStats

BODIES = [
    json.dumps({"id": 6761826132415096001, "date": "2022-04-04T19:35:00+00:00", "event_type": "Cloud IOC"}).encode(),
    b"\x00 not an event",
    json.dumps({"version": "v1.2.0", "metadata": {}, "data": {"id": 7, "date": "2022-04-04T19:36:00+00:00"}}).encode(),
]


def built(payloads: list[bytes]) -> tuple[list[tuple], dict]:
    stats = InputStats("amp-stream", "cisco-secure-endpoint-stream")
    events = build_events(build_stream_event, None, payloads, stats)
    return [(event.fields, event.meta, event.record, event.record_kind) for event in events], stats.extra


def test_a_chunk_of_bodies_gives_one_event_each_and_counts_what_is_not_an_event():
    (event, raw, unwrapped), counted = built(BODIES)
    assert event[1] == {"_id": "6761826132415096001"} and event[3] == RECORD_KIND
    assert raw[0]["tags"] == ["_parse_failure"] and raw[1]["_id"].startswith("amqp-") and raw[2] is None
    assert unwrapped[2] == {"id": 7, "date": "2022-04-04T19:36:00+00:00"}
    assert counted == {"parse_failures": 1}


def test_a_chunk_pickles_and_builds_the_same_in_a_fresh_process():
    shipped = pickle.loads(pickle.dumps((build_stream_event, None, BODIES), pickle.HIGHEST_PROTOCOL))
    assert shipped[0] is build_stream_event
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        elsewhere = pool.submit(built, shipped[2]).result(timeout=120)
    assert elsewhere == built(BODIES)
