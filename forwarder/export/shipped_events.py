"""Records → the exact JSON lines `forwarder run` would ship, through the real pipeline client.

The export does not copy what the pipeline adds (the module's ECS mapping, agent,
ecs.version, host.name, input.type, module fields, tags, fields, processors): each
event is made by the `graph` input's own `record_event` and goes through a real
`PipelineClient.prepare` with the fileset's module processors, and is never
queued, so the registry is never involved.
"""

from __future__ import annotations

import time
from typing import Any

from forwarder.export.source import ExportSource
from forwarder.inputs.graph import dedupe_key, record_event, record_time
from forwarder.outputs.codec import EventEncoder
from forwarder.pipeline.acker import InputAcker
from forwarder.pipeline.client import PipelineClient
from forwarder.pipeline.queue import EventQueue
from forwarder.stats import InputStats


class ShippedEvents:
    """`encode(record, stream)` gives the NDJSON line of one record, or None when a processor drops it."""

    def __init__(self, source: ExportSource) -> None:
        self._encoder = EventEncoder(source.index)
        settings = source.client
        acker = InputAcker(_commit_nowhere, settings.key_prefix)
        stats = InputStats(settings.input_id, settings.input_type)
        queue = EventQueue(1, 1, flush_min_events=1, flush_timeout=0.0)
        self._client = PipelineClient(settings, queue, acker, source.processors, source.agent, stats, dict)

    def encode(self, record: dict[str, Any], stream: str) -> bytes | None:
        event = record_event(record, stream, dedupe_key(record, stream), record_time(record, stream) or time.time())
        prepared = self._client.prepare(event)
        if prepared is None:
            return None
        return self._encoder.encode(prepared) + b"\n"


def _commit_nowhere(updates: dict[str, Any]) -> None:
    """An export has no cursor to keep: acknowledged events commit nothing."""
