"""Turns a slice of a batch into the bytes of one Lumberjack window.

An event whose fields cannot be encoded as JSON (an integer beyond 64 bits,
say) must neither stall the output by failing its window forever nor vanish:
it is sent as a small replacement event that keeps its timestamp, id and
message and says why, tagged `_encoding_failure`.
"""

from __future__ import annotations

import logging
from typing import Any

from forwarder.outputs.codec import EventEncoder
from forwarder.outputs.logstash.frames import json_frames, seal_window
from forwarder.pipeline.event import Event

log = logging.getLogger("forwarder.outputs.logstash")

ENCODING_FAILURE_TAG = "_encoding_failure"
# Go's encoding/json HTML escaping; these bytes can only occur inside JSON strings, so replacing them is safe.
_HTML_ESCAPES = ((b"&", b"\\u0026"), (b"<", b"\\u003c"), (b">", b"\\u003e"))


class WindowEncoder:
    def __init__(self, encoder: EventEncoder, compression_level: int, escape_html: bool = False) -> None:
        self._encoder = encoder
        self._compression_level = compression_level
        self._escape_html = escape_html

    @property
    def compresses(self) -> bool:
        return self._compression_level > 0

    def encode(self, events: list[Event]) -> bytes:
        return self.seal(len(events), self.frames(events))

    def frames(self, events: list[Event]) -> bytes:
        """The uncompressed `J` frames; CPU-bound Python work that holds the GIL."""
        return json_frames(self.payloads(events))

    def seal(self, count: int, frames: bytes) -> bytes:
        """The window ready to write; mostly zlib, which runs without the GIL."""
        return seal_window(count, frames, self._compression_level)

    def payloads(self, events: list[Event]) -> list[bytes]:
        encode = self._encoder.encode
        try:
            payloads = [encode(event) for event in events]
        except Exception:
            payloads = [self._encode_or_replace(event) for event in events]
        if self._escape_html:
            payloads = [_escape_html(payload) for payload in payloads]
        return payloads

    def _encode_or_replace(self, event: Event) -> bytes:
        try:
            return self._encoder.encode(event)
        except Exception as exc:
            event_id = event.meta.get("_id")
            log.warning("logstash: event %s cannot be encoded as JSON (%s); sending a replacement event", event_id, exc)
            return self._encoder.encode(_replacement(event, exc))


def _replacement(event: Event, exc: Exception) -> Event:
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


def _escape_html(payload: bytes) -> bytes:
    for raw, escaped in _HTML_ESCAPES:
        payload = payload.replace(raw, escaped)
    return payload
