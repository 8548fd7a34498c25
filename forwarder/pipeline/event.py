"""The event that travels from an input to an output.

Fields are a nested dict addressed with dotted paths, the way Filebeat's
processors and conditions address them. `@timestamp` and `@metadata` live
beside the fields rather than in them, because every output serialises them
specially and processors must not drop them by accident.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any

_MISSING = object()
# Read-only, so that code writing into an encoded event's fields fails loudly instead of writing into all of them.
_NO_FIELDS: Any = MappingProxyType({})
_new_event = object.__new__
METADATA_PREFIX = "@metadata."


class Event:
    __slots__ = ("timestamp", "fields", "meta", "record", "record_kind", "ack_token", "size", "encoded", "raw_fields")

    def __init__(
        self,
        fields: dict[str, Any],
        timestamp: float | None = None,
        meta: dict[str, Any] | None = None,
        record: Any = None,
        record_kind: str | None = None,
    ) -> None:
        self.timestamp = time.time() if timestamp is None else timestamp
        self.fields = fields
        self.meta = {} if meta is None else meta
        # The source's record as the input parsed it, for the module processors that map it (never
        # serialised; the client drops it once they have run), and what kind of record it is when one
        # input reads several (a Graph stream, say).
        self.record = record
        self.record_kind = record_kind
        # Set by the pipeline client: (InputAcker, sequence number).
        self.ack_token: tuple[Any, int] | None = None
        # Approximate encoded size in bytes, set by the pipeline client.
        self.size = 0
        # The output's JSON document, when it was made before the output got the event (the disk queue
        # stores and sends exactly that); outputs then send these bytes as they are.
        self.encoded: bytes | None = None
        # More fields, still as the JSON object they were read as, with that object decoded: (text, object).
        # The encoder copies the text instead of encoding the object again, as long as nothing changes
        # them; whatever would (a processor, a field the pipeline adds) first merges them (`merge_raw_fields`).
        self.raw_fields: tuple[bytes, dict[str, Any]] | None = None

    @classmethod
    def from_encoded(cls, document: bytes, ack_token: tuple[Any, int] | None = None) -> Event:
        """An event that is only its output document: what the disk queue reads back, what a worker made.

        Made without __init__ (a third of the cost, for every event a worker sends back); its fields and
        meta are one shared read-only empty mapping: outputs send `encoded` as it is.
        """
        event = _new_event(cls)
        event.timestamp = 0.0
        event.fields = event.meta = _NO_FIELDS
        event.record = event.record_kind = None
        event.ack_token = ack_token
        event.encoded = document
        event.raw_fields = None
        event.size = len(document)
        return event

    @classmethod
    def with_raw_fields(cls, fields: dict[str, Any], text: bytes, decoded: dict[str, Any],
                        meta: dict[str, Any]) -> Event:
        """An event whose fields are `fields`, then the members of the JSON object `text` (`decoded`)."""
        event = cls(fields, meta=meta)
        event.raw_fields = (text, decoded)
        return event

    def merge_raw_fields(self) -> None:
        """Makes the raw fields ordinary ones, after `fields`, for code that reads or changes them."""
        if self.raw_fields is not None:
            self.fields.update(self.raw_fields[1])
            self.raw_fields = None

    def get(self, path: str, default: Any = None) -> Any:
        value = self.lookup(path)
        return default if value is _MISSING else value

    def has(self, path: str) -> bool:
        return self.lookup(path) is not _MISSING

    def lookup(self, path: str) -> Any:
        """Returns the value at `path`, or the module-level _MISSING sentinel."""
        if path == "@timestamp":
            return format_timestamp(self.timestamp)
        root, path = self._root(path)
        node: Any = root
        for part in path.split("."):
            if not isinstance(node, dict):
                return _MISSING
            node = node.get(part, _MISSING)
            if node is _MISSING:
                return _MISSING
        return node

    def put(self, path: str, value: Any) -> None:
        """Sets `path`, creating intermediate objects; a scalar in the way is replaced."""
        if path == "@timestamp":
            self.timestamp = parse_timestamp(value)
            return
        root, path = self._root(path)
        parts = path.split(".")
        node = root
        for part in parts[:-1]:
            child = node.get(part)
            if not isinstance(child, dict):
                child = {}
                node[part] = child
            node = child
        node[parts[-1]] = value

    def delete(self, path: str) -> bool:
        """Removes `path`; returns False when it was not there."""
        root, path = self._root(path)
        parts = path.split(".")
        node: Any = root
        for part in parts[:-1]:
            node = node.get(part) if isinstance(node, dict) else None
            if node is None:
                return False
        if isinstance(node, dict) and parts[-1] in node:
            del node[parts[-1]]
            return True
        return False

    def _root(self, path: str) -> tuple[dict[str, Any], str]:
        if path.startswith(METADATA_PREFIX):
            return self.meta, path[len(METADATA_PREFIX):]
        self.merge_raw_fields()
        return self.fields, path


def is_missing(value: Any) -> bool:
    return value is _MISSING


# (millisecond, its text) and (second, "YYYY-MM-DDTHH:MM:SS") of the last call: events built together mostly
# share a millisecond, and strftime is the costliest step of encoding an event.
_last_millisecond: list[tuple[int, str]] = [(-1, "")]
_last_second: list[tuple[int, str]] = [(-1, "")]


def format_timestamp(epoch_seconds: float) -> str:
    """UTC with millisecond precision and a `Z`, as Filebeat writes `@timestamp`.

    Sub-millisecond digits are cut, not rounded, as Go's formatting does
    (`.7215374Z` → `.721Z`); rounding to microseconds first absorbs float error.
    """
    milliseconds = round(epoch_seconds * 1_000_000) // 1000
    cached = _last_millisecond[0]
    if cached[0] == milliseconds:
        return cached[1]
    seconds, ms = divmod(milliseconds, 1000)
    second = _last_second[0]
    if second[0] != seconds:
        second = (seconds, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)))
        _last_second[0] = second
    text = f"{second[1]}.{ms:03d}Z"
    _last_millisecond[0] = (milliseconds, text)
    return text


def parse_timestamp(value: Any) -> float:
    """Accepts epoch seconds or an ISO 8601 string; naive strings are taken as UTC."""
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, datetime):
        parsed = value
    else:
        text = str(value).strip()
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        parsed = datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()
