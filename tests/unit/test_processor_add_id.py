"""add_id: Elasticsearch-style ids in `@metadata._id` (or another field), unique across threads, and `when`."""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor

from forwarder.processors.add_id import elasticsearch_id
from tests.unit.test_processors import build, run


def test_documented_default_writes_a_twenty_character_url_safe_id_to_metadata():
    processors = build("processors:\n  - add_id: ~\n")
    event = run(processors, {"message": "x"})
    assert re.fullmatch(r"[A-Za-z0-9_-]{20}", event.meta["_id"])
    assert event.fields == {"message": "x"}


def test_target_field_and_when():
    processors = build("processors:\n  - add_id: {target_field: event.id, when.has_fields: [message]}\n")
    assert len(run(processors, {"message": "x"}).fields["event"]["id"]) == 20
    assert run(processors, {"other": 1}).fields == {"other": 1}


def test_ids_made_concurrently_are_all_different():
    with ThreadPoolExecutor(4) as pool:
        ids = list(pool.map(lambda _: elasticsearch_id(), range(20000)))
    assert len(set(ids)) == len(ids)
