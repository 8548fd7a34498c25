"""Records of the Microsoft inputs (graph, o365audit, defender-atp) as payloads for `client.publish_raw`.

These inputs decode each page (or content blob) themselves, because the cursor
needs every record's id and time (or, for a blob, how many records it holds);
the event is built later, by a module-level builder, in this process or in a
worker process (`forwarder.workers`). What a payload carries of the record
depends on where it goes:

- built here: the decoded dict itself, so nothing is encoded or decoded twice
  (`forwarder.workers: 1` must be no slower than publishing events directly);
- sent to a worker, from a page whose JSON orjson read (`Page.body`): the page's
  bytes once, in the chunk's context, and per record only its index, dedupe key and
  time; a page is one chunk (up to 1,000 Graph records or 10,000 Defender alerts),
  which the worker decodes once (`page_records`). Writing each
  record back to JSON here took a seventh of the main process, which is the one
  that limits a backfill; the worker does it instead, for `message`;
- sent to a worker otherwise: the record's JSON bytes. Pickling a 2.9 KB sign-in
  dict and reading it back costs ~28 µs, writing it with orjson ~7 µs and pickling the bytes
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

from forwarder.pipeline.client import PipelineClient
from forwarder.pipeline.json_text import json_text


class _DecodedPage:
    """The page a worker decoded last: every payload of a chunk shares the context that holds its bytes."""

    def __init__(self) -> None:
        self.decoded: tuple[bytes, list[Any]] | None = None


_last_page = _DecodedPage()


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


def page_body(page: list[Any], elsewhere: bool) -> bytes | None:
    """The page's JSON bytes when its records go to a worker and orjson read them; None: send records."""
    return getattr(page, "body", None) if elsewhere else None


def page_records(body: bytes) -> list[Any]:
    """The records of a page's JSON (its `value`, or the whole list of an O365 content blob), decoded once
    for all the payloads of a chunk."""
    decoded = _last_page.decoded
    if decoded is not None and decoded[0] is body:
        return decoded[1]
    value = orjson.loads(body)
    records = value["value"] if type(value) is dict else value
    _last_page.decoded = (body, records)
    return records


def payload_record(carried: Any) -> tuple[Any, str]:
    """The record a payload carries and its compact JSON text (the event's `message`)."""
    if type(carried) is bytes:
        return orjson.loads(carried), carried.decode()
    if type(carried) is tuple:
        return json.loads(carried[0]), carried[0]
    return carried, json_text(carried)

