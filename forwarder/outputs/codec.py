"""The JSON every output writes for an event: what Filebeat sends to Logstash."""

from __future__ import annotations

import logging
from typing import Any

import orjson

from forwarder import __version__
from forwarder.pipeline.event import Event, format_timestamp
from forwarder.pipeline.json_text import json_bytes

ENCODING_FAILURE_TAG = "_encoding_failure"

log = logging.getLogger("forwarder.output")


class EventEncoder:
    """Encodes events as `{"@timestamp", "@metadata": {beat, type, version, …}, fields…}`."""

    def __init__(self, index: str = "filebeat", version: str = __version__) -> None:
        self.index = index.lower()
        self.version = version
        # `{"beat":…,"type":"_doc","version":…` without its closing brace: the same for every event.
        self._metadata_head = orjson.dumps({"beat": self.index, "type": "_doc", "version": version})[:-1]

    def document(self, event: Event) -> dict[str, Any]:
        event.merge_raw_fields()
        metadata = {"beat": self.index, "type": "_doc", "version": self.version}
        metadata.update(event.meta)
        document = {"@timestamp": format_timestamp(event.timestamp), "@metadata": metadata}
        document.update(event.fields)
        return document

    def encode(self, event: Event) -> bytes:
        if event.encoded is not None:
            return event.encoded
        fields, meta = event.fields, event.meta
        if type(fields) is dict and type(meta) is dict and not (
                "@timestamp" in fields or "@metadata" in fields or "beat" in meta or "type" in meta
                or "version" in meta):
            try:
                return self._joined(event)
            except orjson.JSONEncodeError:
                pass
        event.merge_raw_fields()
        # Rarely orjson refuses (a non-string key from a YAML `fields` map, an integer beyond 64 bits):
        # json_bytes falls back to slower encoders instead of failing the batch.
        return json_bytes(self.document(event), _fallback)

    def _joined(self, event: Event) -> bytes:
        """The bytes of encoding `document`, joined from the encoded fields and metadata instead.

        orjson writes an object as its members in order between braces, without spaces, so the
        document's JSON is its `@timestamp`, the fixed head of `@metadata`, the event's metadata and its
        fields, each object's members cut out of its braces. That saves building the document (a copy
        of every top-level field and of the metadata) and a sixth of the encoding. Only for events whose
        fields hold no `@timestamp` or `@metadata` and whose metadata does not replace the fixed ones:
        `document` puts those elsewhere. Raw fields (Event.raw_fields) follow the fields as their text.
        """
        body = orjson.dumps(event.fields, default=_fallback)
        meta = orjson.dumps(event.meta, default=_fallback) if event.meta else b"{}"
        parts = [b'{"@timestamp":"', format_timestamp(event.timestamp).encode(), b'","@metadata":',
                 self._metadata_head, b"," if len(meta) > 2 else b"", memoryview(meta)[1:]]
        raw = event.raw_fields
        if raw is None:
            parts += (b"," if len(body) > 2 else b"", memoryview(body)[1:])
        else:
            parts += (b"," if len(body) > 2 else b"", memoryview(body)[1:-1], b",", memoryview(raw[0])[1:])
        return b"".join(parts)

    def encode_or_replace(self, event: Event) -> bytes:
        """`encode`, or when even the fallbacks refuse, a replacement event saying why (never a lost event)."""
        try:
            return self.encode(event)
        except Exception as exc:
            log.warning("event %s cannot be encoded as JSON (%s); sending a replacement event", event.meta.get("_id"),
                        exc)
            return self.encode(replacement_event(event, exc))


def _fallback(value: Any) -> Any:
    """Anything orjson cannot encode natively (bytes, sets, custom objects) is sent as text."""
    if isinstance(value, (bytes, bytearray)):
        return value.decode("utf-8", "replace")
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    return str(value)


def replacement_event(event: Event, exc: Exception) -> Event:
    """What is sent instead of an event orjson and every fallback refuse: its id, message and the reason."""
    fields: dict[str, Any] = {
        "error": {"message": f"forwarder could not encode this event as JSON: {exc}"},
        "tags": [ENCODING_FAILURE_TAG],
    }
    message = event.fields.get("message")
    if message is not None:
        fields["message"] = message if isinstance(message, str) else repr(message)
    meta = {key: value for key, value in event.meta.items() if isinstance(value, str)}
    timestamp = event.timestamp if isinstance(event.timestamp, (int, float)) else None
    return Event(fields, timestamp=timestamp, meta=meta)
