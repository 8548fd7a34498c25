"""The JSON every output writes for an event: what Filebeat sends to Logstash."""

from __future__ import annotations

from typing import Any

import orjson

from forwarder import __version__
from forwarder.pipeline.event import Event, format_timestamp


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
        document = self.document(event)
        try:
            return orjson.dumps(document, default=_fallback)
        except orjson.JSONEncodeError:
            # Rare (a non-string key from a YAML `fields` map): the slower option handles it.
            return orjson.dumps(document, default=_fallback, option=orjson.OPT_NON_STR_KEYS)


def _fallback(value: Any) -> Any:
    """Anything orjson cannot encode natively (bytes, sets, custom objects) is sent as text."""
    if isinstance(value, (bytes, bytearray)):
        return value.decode("utf-8", "replace")
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    return str(value)
