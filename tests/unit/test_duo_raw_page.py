"""A Duo or Secure Endpoint page on its way to a worker process: only the answer's bytes travel, and the worker's
events are the ones the input's own process would build."""

from __future__ import annotations

import json
import pickle

import orjson

from forwarder.inputs.api_pages import RawPage
from forwarder.inputs.duo import build_duo_event
from forwarder.inputs.duo import decode_page as decode_duo_page
from forwarder.inputs.secure_endpoint import RECORD_KIND, build_secure_endpoint_event
from forwarder.inputs.secure_endpoint import decode_page as decode_secure_endpoint_page
from forwarder.stats import InputStats

STATS = InputStats("test", "test")


def duo_answer(count: int) -> bytes:
    records = [{"txid": f"tx-{number}", "isotimestamp": f"2026-12-06T07:00:{number % 60:02d}.123456+00:00",
                "user": {"name": f"jürgen{number}@例え.jp"}, "score": number / 7} for number in range(count)]
    return orjson.dumps({"stat": "OK", "response": {"authlogs": records, "metadata": {"next_offset": None}}})


def test_a_pickled_duo_page_carries_only_the_answers_bytes_and_builds_the_same_events() -> None:
    raw = duo_answer(500)
    here = RawPage("auth", raw, decode_duo_page("auth", raw), decode_duo_page)
    shipped = pickle.dumps(here, pickle.HIGHEST_PROTOCOL)
    assert len(shipped) < len(raw) + 200, "decoded records travelled with the page"
    there = pickle.loads(shipped)
    for index in (0, 17, 499):
        local = build_duo_event(here, (index, 1.5, f"tx-{index}"), STATS)
        remote = build_duo_event(there, (index, 1.5, f"tx-{index}"), STATS)
        assert remote.fields == local.fields and remote.record == local.record
        assert remote.record_kind == "auth" and remote.meta == {"_id": f"tx-{index}"} and remote.timestamp == 1.5
    assert there.records() is there.records(), "the page is decoded once for all its records"


def test_a_secure_endpoint_page_keeps_an_integer_beyond_64_bits_exact_in_the_worker() -> None:
    huge = 123456789012345678901234567890
    raw = json.dumps({"data": [{"id": 1, "count": huge}, {"id": 2}], "metadata": {}}).encode()
    page = pickle.loads(pickle.dumps(RawPage(RECORD_KIND, raw, None, decode_secure_endpoint_page)))
    event = build_secure_endpoint_event(page, (0, 2.0, "1"), STATS)
    assert event.record["count"] == huge and str(huge) in event.fields["message"]
    assert event.record_kind == RECORD_KIND
