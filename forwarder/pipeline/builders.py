"""Turning the raw payloads an input read into events: the one step that runs in a worker process or here.

An input hands `PipelineClient.publish_raw` what it read (a line, a row, a
record's bytes) and a builder; with `forwarder.workers` the chunk is built in
a worker (worker_process.encode_chunk), otherwise here by `build_events`.
Either way a builder that raises costs its own record only.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

from forwarder.pipeline.event import Event
from forwarder.stats import InputStats

log = logging.getLogger("forwarder.pipeline")

# Turns one raw payload an input read (a line, a row, a record's bytes) into its event(s); see `publish_raw`.
Builder = Callable[[Any, Any, InputStats], "Event | list[Event] | None"]


def build_events(build: Builder, context: Any, payloads: Sequence[Any], stats: InputStats) -> list[Event]:
    """The events of `payloads` built here; a builder that raises costs its record only, as in a worker."""
    events: list[Event] = []
    for payload in payloads:
        try:
            built = build(context, payload, stats)
        except Exception as error:
            count_build_failure(stats, error)
            continue
        if built is None:
            continue
        if isinstance(built, Event):
            events.append(built)
        else:
            events.extend(built)
    return events


def count_build_failure(stats: InputStats, error: Exception) -> None:
    """A builder turns bad input into a tagged event: what raises is a defect. The record is counted and logged,
    not retried: retrying would stop every record behind it (a file read again from the same line forever)."""
    stats.extra["build_failures"] = stats.extra.get("build_failures", 0) + 1
    log.error("%s: building an event failed (%s: %s); the record is not sent (build_failures in /stats)",
              stats.input_id, type(error).__name__, error)
