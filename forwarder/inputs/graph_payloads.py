"""Records of the Microsoft inputs (graph, o365audit, defender-atp) as payloads for `client.publish_raw`.

These inputs decode each page (or content blob) themselves, because the cursor
needs every record's id and time (or, for a blob, where each chunk of it ends);
the event is built later, by a module-level builder, in this process or in a
worker process (`forwarder.workers`). What a payload carries of the record
depends on where it goes:

- built here: the decoded dict itself, so nothing is encoded or decoded twice
  (`forwarder.workers: 1` must be no slower than publishing events directly);
- sent to a worker: the record's JSON bytes. Pickling a 2.9 KB sign-in dict and
  reading it back costs ~28 µs, writing it with orjson ~3-7 µs and pickling the
  bytes ~2 µs; the worker reads the dict back from them and takes `message` from
  them as they are. A record orjson cannot write (an integer beyond 64 bits) goes
  as a 1-tuple of the standard library's JSON text, read back by the standard
  library, which keeps such integers exact where orjson would turn them into
  floats (a decoded record is never bytes nor a tuple, so the three cannot be
  confused).

Sending a page's JSON once per chunk with each record as its index was tried and
measured (bench/entraid_graph.py, alternating runs): 5 µs per record less here,
17 µs more in the workers, so less in all on two cores.

A page (an O365 blob: up to 1,000 of its records) is one chunk.
"""

from __future__ import annotations

import json
from typing import Any

import orjson

from forwarder.pipeline.client import PipelineClient
from forwarder.pipeline.json_text import json_text


def builds_elsewhere(client: PipelineClient) -> bool:
    """True when `client.publish_raw` sends its payloads to worker processes (they must be cheap to pickle)."""
    return client.workers is not None


def record_payload(record: Any, elsewhere: bool) -> Any:
    """What a payload carries of `record`: the record itself, or (`elsewhere`) its JSON (see above)."""
    if not elsewhere:
        return record
    try:
        return orjson.dumps(record)
    except orjson.JSONEncodeError:
        return (json_text(record),)


def payload_record(carried: Any) -> tuple[Any, str]:
    """The record a payload carries and its compact JSON text (the event's `message`)."""
    if type(carried) is bytes:
        return orjson.loads(carried), carried.decode()
    if type(carried) is tuple:
        return json.loads(carried[0]), carried[0]
    return carried, json_text(carried)

