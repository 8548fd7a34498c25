"""The JSON every output writes for an event: what Filebeat sends to Logstash."""

from __future__ import annotations

from typing import Any

from forwarder import __version__
from forwarder.pipeline.event import Event, format_timestamp
from forwarder.pipeline.json_text import json_bytes


class EventEncoder:
    """Encodes events as `{"@timestamp", "@metadata": {beat, type, version, …}, fields…}`."""

    def __init__(self, index: str = "filebeat", version: str = __version__) -> None:
        self.index = index.lower()
        self.version = version

    def document(self, event: Event) -> dict[str, Any]:
        metadata = {"beat": self.index, "type": "_doc", "version": self.version}
        metadata.update(event.meta)
        document = {"@timestamp": format_timestamp(event.timestamp), "@metadata": metadata}
        document.update(event.fields)
        return document

    def encode(self, event: Event) -> bytes:
        if event.encoded is not None:
            return event.encoded
        # Rarely orjson refuses (a non-string key from a YAML `fields` map, an integer beyond 64 bits):
        # json_bytes falls back to slower encoders instead of failing the batch.
        return json_bytes(self.document(event), _fallback)


def _fallback(value: Any) -> Any:
    """Anything orjson cannot encode natively (bytes, sets, custom objects) is sent as text."""
    if isinstance(value, (bytes, bytearray)):
        return value.decode("utf-8", "replace")
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    return str(value)
