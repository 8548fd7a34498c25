"""Records of the Microsoft inputs (graph, o365audit, defender-atp) as payloads for `client.publish_raw`.

These inputs decode each page (or content blob) themselves, because the cursor
needs every record's id and time; the event is built later, by a module-level
builder, in this process or in a worker process (`forwarder.workers`). What a
payload carries of the record depends on where it goes:

- built here: the decoded dict itself, so nothing is encoded or decoded twice
  (`forwarder.workers: 1` must be no slower than publishing events directly);
- sent to a worker: the record's JSON bytes. Pickling a 2.9 KB sign-in dict and
  reading it back costs ~28 µs, writing it with orjson ~7 µs and pickling the bytes
  ~2 µs; the worker reads the dict back from them and takes `message` from them as
  they are. A record orjson cannot write (an integer beyond 64 bits) goes as a
  1-tuple of the standard library's JSON text, read back by the standard library,
  which keeps such integers exact where orjson would turn them into floats (a
  decoded record is never bytes nor a tuple, so the three cannot be confused).
"""

from __future__ import annotations

import json
from typing import Any

import orjson

from forwarder.pipeline.client import Builder, PipelineClient
from forwarder.pipeline.json_text import json_text

# Most payloads one `publish_raw` call carries: a Graph page (at most 1,000 records) goes whole.
CHUNK_PAYLOADS = 2000


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


def publish_page(client: PipelineClient, build: Builder, context: Any, payloads: list[Any],
                 cursor: dict[str, Any]) -> bool:
    """Publishes one page's payloads in chunks of at most CHUNK_PAYLOADS, the cursor with the last chunk.

    A Defender page holds up to 10,000 alerts: in chunks, a worker process starts on the first while
    the rest are still handed over, and no one chunk holds a worker for long. False when stopping.
    """
    last = (len(payloads) - 1) // CHUNK_PAYLOADS * CHUNK_PAYLOADS
    for start in range(0, last, CHUNK_PAYLOADS):
        if not client.publish_raw(build, context, payloads[start:start + CHUNK_PAYLOADS]):
            return False
    return client.publish_raw(build, context, payloads[last:], cursor)
