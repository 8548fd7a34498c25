"""Decoded API records as payloads for `client.publish_raw` (the duo and cisco-secure-endpoint inputs).

These inputs decode each page themselves, because the cursor needs every
record's time and id; the event is built later, by a module-level builder, in
this process or in a worker process (`forwarder.workers`). What a payload
carries of the record depends on where it goes:

- built in this process: the decoded record itself, so nothing is encoded or
  decoded twice (`forwarder.workers: 1` must be no slower than before);
- sent to a worker: the record's JSON bytes as orjson writes them. For a
  1.3 KB Duo auth record, pickling the dict costs 6.7 µs here and 4.0 µs in
  the worker; writing it with orjson 2.3 µs (needed anyway: it is `message`)
  and pickling the bytes 0.1 µs here, reading the dict back 3.7 µs there. A
  record orjson cannot write (an integer beyond 64 bits) goes as the standard
  library's JSON text (str), read back by the standard library, which keeps
  such integers exact where orjson would turn them into floats.
"""

from __future__ import annotations

import json
from typing import Any

import orjson

from forwarder.pipeline.client import PipelineClient
from forwarder.pipeline.json_text import json_text


def builds_elsewhere(client: PipelineClient) -> bool:
    """True when `client.publish_raw` sends payloads to worker processes, so they must be cheap to pickle."""
    return client.workers is not None


def record_payload(record: dict[str, Any], elsewhere: bool) -> dict[str, Any] | bytes | str:
    """What a payload carries of `record`: the record itself, or (`elsewhere`) its JSON as bytes or str."""
    if not elsewhere:
        return record
    try:
        return orjson.dumps(record)
    except orjson.JSONEncodeError:
        return json_text(record)


def payload_record(carried: dict[str, Any] | bytes | str) -> tuple[Any, str]:
    """The record a payload carries and its compact JSON text (the event's `message`)."""
    if type(carried) is bytes:
        return orjson.loads(carried), carried.decode()
    if type(carried) is str:
        return json.loads(carried), carried
    return carried, json_text(carried)
