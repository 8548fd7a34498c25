"""Turns a slice of a batch into the bytes of one Lumberjack window.

An event whose fields cannot be encoded as JSON (an integer beyond 64 bits,
say) must neither stall the output by failing its window forever nor vanish:
it is sent as a small replacement event that keeps its timestamp, id and
message and says why, tagged `_encoding_failure`.
"""

from __future__ import annotations

import logging

from forwarder.outputs.codec import EventEncoder
from forwarder.outputs.logstash.frames import json_frames, seal_window
from forwarder.pipeline.event import Event

log = logging.getLogger("forwarder.outputs.logstash")

# Go's encoding/json HTML escaping; these bytes can only occur inside JSON strings, so replacing them is safe.
_HTML_ESCAPES = ((b"&", b"\\u0026"), (b"<", b"\\u003c"), (b">", b"\\u003e"))


class WindowEncoder:
    def __init__(self, encoder: EventEncoder, compression_level: int, escape_html: bool = False) -> None:
        self._encoder = encoder
        self._compression_level = compression_level
        self._escape_html = escape_html

    def encode(self, events: list[Event]) -> bytes:
        return seal_window(len(events), json_frames(self.payloads(events)), self._compression_level)

    def payloads(self, events: list[Event]) -> list[bytes]:
        encode = self._encoder.encode
        try:
            payloads = [encode(event) for event in events]
        except Exception:
            payloads = [self._encoder.encode_or_replace(event) for event in events]
        if self._escape_html:
            payloads = [_escape_html(payload) for payload in payloads]
        return payloads


def _escape_html(payload: bytes) -> bytes:
    for raw, escaped in _HTML_ESCAPES:
        payload = payload.replace(raw, escaped)
    return payload
