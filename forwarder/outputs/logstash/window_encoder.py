"""Turns a slice of a batch into the bytes of one Lumberjack window.

An event whose fields cannot be encoded as JSON (an integer beyond 64 bits,
say) must neither stall the output by failing its window forever nor vanish:
it is sent as a small replacement event that keeps its timestamp, id and
message and says why, tagged `_encoding_failure`.
"""

from __future__ import annotations

import logging
from concurrent.futures import Executor, Future

from forwarder.outputs.codec import EventEncoder
from forwarder.outputs.logstash.deflate import compressor as zlib_stream
from forwarder.outputs.logstash.frames import compressed_window, json_frames, seal_window
from forwarder.pipeline.event import Event

log = logging.getLogger("forwarder.outputs.logstash")

# Events per piece handed to the compressor thread: big enough that the hand-off costs nothing.
COMPRESSION_CHUNK = 256
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
        return seal_window(len(events), json_frames(self.payloads(events)), self._compression_level)

    def encode_in_background(self, events: list[Event], compressor: Executor | None) -> Future[bytes]:
        """The window's bytes, deflated on `compressor` (one thread) while the next chunk's JSON is encoded here.

        JSON encoding holds the GIL and deflate (ISA-L or zlib) releases it,
        so feeding one zlib stream chunk by chunk lets both run at once instead of one
        after the other. The result is still one `C` frame.
        """
        if compressor is None or not self.compresses:
            done: Future[bytes] = Future()
            done.set_result(self.encode(events))
            return done
        stream = zlib_stream(self._compression_level)
        parts = []
        for start in range(0, len(events), COMPRESSION_CHUNK):
            frames = json_frames(self.payloads(events[start:start + COMPRESSION_CHUNK]), first_sequence=start + 1)
            parts.append(compressor.submit(stream.compress, frames))
        parts.append(compressor.submit(stream.flush))
        count = len(events)
        # The executor runs jobs in order, so every part is finished when this one starts.
        return compressor.submit(lambda: compressed_window(count, b"".join(part.result() for part in parts)))

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
