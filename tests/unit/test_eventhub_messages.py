"""The Event Hubs builder runs wherever the pipeline builds events: from its arguments alone, in another process too."""

from __future__ import annotations

import dataclasses
import logging
import multiprocessing
import pickle
from concurrent.futures import ProcessPoolExecutor

import orjson
import pytest

from forwarder.inputs.eventhub_decoder import Sanitizer
from forwarder.inputs.eventhub_messages import UNPARSABLE_BODY, PartitionSource, build_message_events
from forwarder.pipeline.client import build_events
from forwarder.stats import InputStats

ENQUEUED = 1715677337.5
SOURCE = PartitionSource("hub", "insights-logs-signinlogs", "$Default", "3", (Sanitizer("new_lines"),))
RECORDS = [{"category": "SignInLogs", "properties": {"id": "a"}}, {"category": "AuditLogs", "properties": {"id": "b"}}]
MESSAGES = [
    (orjson.dumps({"records": RECORDS}), "4096", 17, ENQUEUED, "tenant-1"),
    (b'{"records": [{"category": "AuditLogs", "resultDescription": "two\nlines"}]}', "8192", 18, ENQUEUED, None),
    (b"{}", "9000", 19, ENQUEUED, None),
    (b"not json at all", "9100", 20, ENQUEUED, None),
]


def built(source: PartitionSource, payloads: list) -> tuple[list[tuple], dict]:
    """What the events of a chunk are made of, and what was counted, built in whichever process calls this."""
    stats = InputStats("hub", "azure-eventhub")
    events = build_events(build_message_events, source, payloads, stats)
    made = [(event.timestamp, event.fields, event.meta, event.record, event.record_kind) for event in events]
    return made, stats.extra


def test_a_message_becomes_one_event_per_record_with_its_envelope_and_stable_ids():
    events, counted = built(SOURCE, MESSAGES[:1])
    assert [meta["_id"] for _, _, meta, _, _ in events] == ["3-17-0", "3-17-1"]
    timestamp, fields, _, record, _ = events[1]
    assert timestamp == ENQUEUED and record == RECORDS[1] and orjson.loads(fields["message"]) == RECORDS[1]
    assert fields["azure"] == {"eventhub": "insights-logs-signinlogs", "consumer_group": "$Default",
                               "partition_id": "3", "offset": "4096", "sequence_number": 17,
                               "enqueued_time": "2024-05-14T09:02:17.500Z", "partition_key": "tenant-1"}
    assert fields["azure"] is not events[0][1]["azure"]  # each record's own copy, for the mapping to merge into
    assert counted == {"records": 2}


def test_repaired_unparsable_and_empty_bodies_are_counted_where_they_are_built(caplog: pytest.LogCaptureFixture):
    caplog.set_level(logging.WARNING, "forwarder.input.azure-eventhub")
    # an input id of its own: the warning is rate-limited per input and partition in the building process
    events, counted = built(dataclasses.replace(SOURCE, input_id="warned"), MESSAGES[1:])
    repaired, raw = events
    assert repaired[2]["_id"] == "3-18-0" and repaired[3]["resultDescription"] == "twolines"
    assert raw[2]["_id"] == "3-20-0" and raw[4] == UNPARSABLE_BODY and raw[1]["message"] == "not json at all"
    assert raw[1]["tags"] == ["_parse_failure"] and "cannot decode" in raw[1]["error"]["message"]
    # the sanitizers ran on both invalid bodies; one of them still is not JSON
    assert counted == {"sanitized_messages": 2, "records": 1, "empty_bodies": 1, "parse_failures": 1}
    assert caplog.messages == ["warned: message 19 of partition 3 of event hub 'insights-logs-signinlogs' holds no "
                               "records: the body is an empty JSON object; nothing to forward"]


def test_a_chunk_pickles_and_builds_the_same_in_a_fresh_process():
    """What a worker process gets: the builder by reference, the partition and the raw message; no input object."""
    shipped = pickle.loads(pickle.dumps((build_message_events, SOURCE, MESSAGES), pickle.HIGHEST_PROTOCOL))
    assert shipped[0] is build_message_events and shipped[1] == SOURCE
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        elsewhere = pool.submit(built, shipped[1], shipped[2]).result(timeout=120)
    assert elsewhere == built(SOURCE, MESSAGES)
