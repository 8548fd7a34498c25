"""What the graph, o365audit and defender-atp inputs hand to `publish_raw` builds the same events in a worker
process as in this one: the builders are module-level, the payloads plain bytes, and a record's JSON text
survives exactly (integers beyond 64 bits included)."""

from __future__ import annotations

import json
import multiprocessing
import pickle
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import orjson
import pytest

from forwarder.inputs.defender_atp import build_alert_events
from forwarder.inputs.graph import build_record_event
from forwarder.inputs.graph_payloads import record_payload
from forwarder.inputs.o365_poller import build_record_event as build_audit_event
from forwarder.pipeline.client import Builder, build_events
from forwarder.stats import InputStats

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
SIGN_IN = json.loads((FIXTURES / "entraid" / "signin_interactive_success.json").read_text())
ALERT = {"id": "da1", "lastUpdateTime": "2020-06-30T15:29:44.7733333Z", "title": "Suspicious",
         "evidence": [{"entityType": "File", "sha1": "a" * 40}, {"entityType": "Ip", "ipAddress": "10.0.0.1"}]}
AUDIT = json.loads((FIXTURES / "o365" / "exchange_item_send.json").read_text())
HUGE = 2**70 + 1

# (builder, context, record, dedupe key or None for o365's bare-record payloads)
CASES = [
    (build_record_event, "signinlogs", SIGN_IN, "sign-in-key"),
    (build_record_event, "signinlogs", {"id": "big", "createdDateTime": "2024-01-01T00:00:00Z", "n": HUGE}, "big"),
    (build_alert_events, True, ALERT, "da1|2020-06-30T15:29:44.7733333Z"),
    (build_alert_events, False, ALERT, "da1|2020-06-30T15:29:44.7733333Z"),
    (build_audit_event, ("tenant-1", True), AUDIT, None),
    (build_audit_event, ("tenant-1", True), {"Id": "big", "CreationTime": "2024-01-01T00:00:00", "n": HUGE}, None),
    (build_audit_event, ("tenant-1", False), "not an object", None),
]


def payload(record: Any, key: str | None, elsewhere: bool) -> Any:
    carried = record_payload(record, elsewhere)
    return carried if key is None else (carried, key, 1_700_000_000.0)


def built(build: Builder, context: Any, payloads: list[Any]) -> list[tuple[Any, ...]]:
    """The events as comparable tuples (the o365 parse failure's time is the clock's: left out)."""
    events = build_events(build, context, payloads, InputStats("test", "graph"))
    return [(event.fields, event.meta, event.record, event.record_kind,
             None if event.record is None else event.timestamp) for event in events]


def build_pickled(message: bytes) -> bytes:
    """A worker's part: the chunk arrives pickled, its events go back pickled."""
    build, context, payloads = pickle.loads(message)
    return pickle.dumps(built(build, context, payloads))


@pytest.fixture(scope="module")
def worker() -> Iterator[ProcessPoolExecutor]:
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        yield pool


@pytest.mark.parametrize(("build", "context", "record", "key"), CASES)
def test_a_worker_process_builds_the_events_this_process_builds(build, context, record, key, worker):
    here = built(build, context, [payload(record, key, elsewhere=False)])
    shipped = [payload(record, key, elsewhere=True)]
    assert all(type(item if key is None else item[0]) in (bytes, tuple) for item in shipped)
    there = pickle.loads(worker.submit(build_pickled, pickle.dumps((build, context, shipped))).result())
    assert there == here
    assert here and all(fields["message"] for fields, *_ in here)


def test_integers_beyond_64_bits_keep_every_digit_in_the_record_and_its_text():
    record = {"id": "big", "n": HUGE}
    shipped = record_payload(record, elsewhere=True)
    with pytest.raises(orjson.JSONEncodeError):
        orjson.dumps(record)
    [(fields, _, carried, _, _)] = built(build_record_event, "signinlogs", [(shipped, "big", 0.0)])
    assert carried["n"] == HUGE and str(HUGE) in fields["message"]


def test_a_shipped_record_is_its_compact_json_not_the_dict():
    shipped = record_payload(SIGN_IN, elsewhere=True)
    assert shipped == orjson.dumps(SIGN_IN)
    assert len(pickle.dumps(shipped)) < len(shipped) + 32
