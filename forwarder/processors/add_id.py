"""`add_id`: a unique, roughly time-ordered document id (Elasticsearch's kind), `@metadata._id` by default.

Receivers that index by `@metadata._id` deduplicate replays of the same
event; add_id is for sites that want an id where the source has none. The id
is 20 URL-safe base64 characters from 15 bytes: milliseconds since the epoch
(6 bytes), a per-process sequence (3 bytes) and a random per-process node
part (6 bytes), so ids made in the same millisecond, or on two hosts, differ.
"""

from __future__ import annotations

import base64
import itertools
import os
import time

from forwarder.pipeline.client import Processor
from forwarder.pipeline.event import Event
from forwarder.pipeline.field_path import FieldPath, put_field, top_level_keys
from forwarder.pipeline.touched_fields import declare_fields
from forwarder.schema.declared import STRING, Setting, read_settings
from forwarder.schema.section import Section

ADD_ID_SETTINGS = (
    Setting("target_field", STRING, "@metadata._id", "the field the id is written to"),
    Setting("type", STRING, "elasticsearch", "the kind of id: Elasticsearch's time-based id",
            choices=("elasticsearch",)),
)

_NODE = os.urandom(6)
_SEQUENCE = itertools.count(int.from_bytes(os.urandom(3), "big"))


def elasticsearch_id() -> str:
    """20 characters, unique per call; `next` on itertools.count is atomic, so threads never share a value."""
    millis = int(time.time() * 1000) & 0xFFFF_FFFF_FFFF
    sequence = next(_SEQUENCE) & 0xFF_FFFF
    raw = millis.to_bytes(6, "big") + sequence.to_bytes(3, "big") + _NODE
    return base64.urlsafe_b64encode(raw).decode("ascii")


def build_add_id(options: Section) -> Processor:
    values = read_settings(options, ADD_ID_SETTINGS)
    target = FieldPath(values["target_field"])

    def add_id(event: Event) -> Event:
        put_field(event, target, elasticsearch_id())
        return event

    return declare_fields(add_id, top_level_keys(values["target_field"]))
