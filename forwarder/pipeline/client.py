"""Where an input hands over its events: `PipelineClient.publish(event, cursor)`.

The client adds the fields every Filebeat event carries (agent, ecs, host,
input, tags, fields, module fields), runs the input's processors and then the
global ones on the publishing thread, registers the event with the input's
acker together with its cursor, and puts it on the bounded queue. `publish`
blocks while the queue is full: that is the backpressure a polling input
relies on to stop paging.
"""

from __future__ import annotations

import logging
import socket
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from forwarder import __version__
from forwarder.pipeline.acker import InputAcker, SharedAcknowledgement
from forwarder.pipeline.builders import Builder, build_events
from forwarder.pipeline.event import Event
from forwarder.pipeline.queue import EventQueue, QueueClosed
from forwarder.pipeline.touched_fields import touched_fields
from forwarder.stats import InputStats

ECS_VERSION = "8.0.0"
FORWARDED_TAG = "forwarded"
PARSE_FAILURE_TAG = "_parse_failure"

log = logging.getLogger("forwarder.pipeline")

Processor = Callable[[Event], "Event | None"]
# What `publish_raw` commits: one cursor for the chunk, or one per payload.
Cursors = dict[str, Any] | list[dict[str, Any] | None] | None


@dataclass
class AgentInfo:
    """Identity written into `agent.*` and `host.name` of every event."""

    name: str = field(default_factory=socket.gethostname)
    hostname: str = field(default_factory=socket.gethostname)
    id: str = field(default_factory=lambda: str(uuid.uuid4()))
    ephemeral_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    version: str = __version__


@dataclass
class ClientSettings:
    """What the pipeline needs to know about one input instance."""

    input_id: str
    input_type: str
    tags: list[str] = field(default_factory=list)
    fields: dict[str, Any] = field(default_factory=dict)
    fields_under_root: bool = False
    processors: list[Processor] = field(default_factory=list)
    disable_host: bool = False
    # Set by modules: event.module, event.dataset, fileset.name, service.type.
    module_fields: dict[str, Any] = field(default_factory=dict)
    # Set by modules: what turns the input's records into the fileset's events (the ECS mapping),
    # run before anything else, under one error policy (see PipelineClient._run_processors).
    module_processors: list[Processor] = field(default_factory=list)
    # Becomes @metadata.pipeline (Filebeat's ingest pipeline name), when set.
    ingest_pipeline: str | None = None

    @property
    def key_prefix(self) -> str:
        return f"{self.input_type}::{self.input_id}::"


class PipelineClient:
    def __init__(
        self,
        settings: ClientSettings,
        queue: EventQueue,
        acker: InputAcker,
        global_processors: list[Processor],
        agent: AgentInfo,
        stats: InputStats,
        read_committed: Callable[[], dict[str, Any]],
    ) -> None:
        self.settings = settings
        self._read_committed = read_committed
        self.stats = stats
        self._queue = queue
        self._acker = acker
        self._processors = list(settings.processors) + list(global_processors)
        self._agent = {
            "name": agent.name,
            "type": "filebeat",
            "version": agent.version,
            "id": agent.id,
            "ephemeral_id": agent.ephemeral_id,
            "hostname": agent.hostname,
        }
        self._host_name = None if (settings.disable_host or FORWARDED_TAG in settings.tags) else agent.name
        self._module_processors = list(settings.module_processors)
        # The top-level fields `prepare` and the processors may touch: an event's raw fields (Event.raw_fields)
        # holding one of them, a processor that does not declare its fields, or a module mapping, means they
        # must be merged first.
        touched = [touched_fields(processor) for processor in self._processors]
        self._raw_fields_stay_raw = not self._module_processors and None not in touched
        self._written_keys = frozenset().union(*(keys for keys in touched if keys), {
            "agent", "ecs", "input", *(("host",) if self._host_name is not None else ()), *settings.module_fields,
            *(("tags",) if settings.tags else ()),
            *((settings.fields if settings.fields_under_root else ("fields",)) if settings.fields else ())})
        for processor in self._module_processors:
            # A module processor that reports per input (counters in /stats, log lines naming the input) has
            # `bind_input(input_id, stats)`: it learns which input it serves before the first event.
            bind_input = getattr(processor, "bind_input", None)
            if bind_input is not None:
                bind_input(settings.input_id, stats)
        self._failures_logged: set[tuple[str, str]] = set()
        # Set by the pipeline when `forwarder.workers` runs event building in worker processes.
        self.workers: Any = None

    @property
    def acker(self) -> InputAcker:
        return self._acker

    def publish_raw(self, build: Builder, context: Any, payloads: Sequence[Any], cursor: Cursors = None) -> bool:
        """`publish_many` for what an input read but has not turned into events yet.

        `build(context, payload, stats)` makes each payload's event(s) (None: nothing to send). With
        `forwarder.workers` above 1 the payloads go to a worker process that builds, maps and encodes them
        while this input reads on, which is why `build` must be a module-level function, `context` and
        the payloads cheap to pickle (text, bytes, tuples), and `build` may touch nothing of the input but
        its arguments (counters in `stats.extra` and `stats.filtered` are summed back). Returns when the
        chunk is handed over; False when the forwarder is stopping. `cursor` goes with the last payload, or
        is a list with one cursor (or None) per payload when each has its own resume point.
        """
        if self.workers is not None:
            return self.workers.submit(self, build, context, payloads, cursor)
        return self.publish_raw_here(build, context, payloads, cursor)

    def try_publish_raw(self, build: Builder, context: Any, payloads: Sequence[Any]) -> bool:
        """`publish_raw` for sources that cannot wait (UDP syslog): what finds no room is dropped and counted
        in `dropped`, never waited for. False when the forwarder is stopping."""
        if self.workers is not None:
            return self.workers.submit(self, build, context, payloads, None, wait=False)
        return self.publish_raw_here(build, context, payloads, None, wait=False)

    def publish_raw_here(self, build: Builder, context: Any, payloads: Sequence[Any], cursor: Cursors,
                         wait: bool = True) -> bool:
        """`publish_raw` in this process, whatever `forwarder.workers` says."""
        if isinstance(cursor, list):
            return self._publish_each(build, context, payloads, cursor)
        events = build_events(build, context, payloads, self.stats)
        if wait:
            return self.publish_many(events, cursor)
        return all(self.try_publish(event) is not None for event in events)

    def _publish_each(self, build: Builder, context: Any, payloads: Sequence[Any], cursors: list[Any]) -> bool:
        """Payloads with a cursor each (a file's lines): one acker call and one queue call for the chunk.

        A payload that made no event is done at once; one that made several is done when all of them are.
        """
        if len(payloads) != len(cursors):
            raise ValueError(f"{len(payloads)} payloads but {len(cursors)} cursors")
        prepared = [[event for event in map(self.prepare, build_events(build, context, [payload], self.stats))
                     if event is not None] for payload in payloads]
        acker = self._acker
        first = acker.track_each(cursors)
        events: list[Event] = []
        done: list[int] = []
        for sequence, built in enumerate(prepared, first):
            token: tuple[Any, int] = (acker, sequence)
            if not built:
                done.append(sequence)
            elif len(built) > 1:
                token = (SharedAcknowledgement(acker, sequence, len(built)), sequence)
            for event in built:
                event.ack_token = token
                events.append(event)
        if done:
            acker.done_many(done)
        try:
            self._queue.put_many(events)
        except QueueClosed as closed:
            for sequence in sorted({event.ack_token[1] for event in events[closed.queued:]}):
                acker.abandon(sequence)
            self.stats.published += closed.queued
            return False
        self.stats.published += len(events)
        return True

    def publish(self, event: Event, cursor: dict[str, Any] | None = None) -> bool:
        """Queues `event`; `cursor` ({source: value}) is committed once it and all before it are acked.

        Blocks while the queue is full. Returns False when the forwarder is
        stopping, and the input should return.
        """
        event = self.prepare(event)
        if event is None:
            self._acker.done(self._acker.track(cursor))
            return True
        sequence = self._acker.track(cursor)
        event.ack_token = (self._acker, sequence)
        try:
            self._queue.put(event)
        except QueueClosed:
            self._acker.abandon(sequence)
            return False
        self.stats.published += 1
        return True

    def publish_many(self, events: list[Event], cursor: dict[str, Any] | None = None) -> bool:
        """`publish` for a chunk of events read together; `cursor` goes with the last one.

        One acker lock and one queue lock per chunk instead of per event, which is most of what publishing
        costs a source that reads thousands of records a second. The cursor should say where to resume
        after the whole chunk: a crash then replays at most the chunk's unacknowledged events.
        """
        prepared = [event for event in map(self.prepare, events) if event is not None]
        if not prepared:
            self._acker.done(self._acker.track(cursor))
            return True
        acker = self._acker
        first = acker.track_many(len(prepared), cursor)
        for offset, event in enumerate(prepared):
            event.ack_token = (acker, first + offset)
        try:
            self._queue.put_many(prepared)
        except QueueClosed as closed:
            for sequence in range(first + closed.queued, first + len(prepared)):
                acker.abandon(sequence)
            self.stats.published += closed.queued
            return False
        self.stats.published += len(prepared)
        return True

    def try_publish(self, event: Event) -> bool | None:
        """Non-blocking publish for sources that cannot wait (UDP syslog).

        Returns True when queued, False when the queue was full and the event
        was dropped (counted), None when the forwarder is stopping.
        """
        event = self.prepare(event)
        if event is None:
            return True
        event.ack_token = (self._acker, self._acker.track(None))
        try:
            queued = self._queue.try_put(event)
        except QueueClosed:
            self._acker.abandon(event.ack_token[1])
            return None
        if not queued:
            self._acker.dropped(event.ack_token[1])
            self.stats.dropped += 1
            return False
        self.stats.published += 1
        return True

    def commit(self, cursor: dict[str, Any]) -> None:
        """Commits a cursor that has no event (a removed file's entry set to None), in publish order:
        it takes effect once everything published before it is acknowledged."""
        self._acker.done(self._acker.track(cursor))

    def on_commit(self, listener: Callable[[dict[str, Any]], None]) -> Callable[[], None]:
        """`listener({source: value})` runs after each commit of this input's cursors; it must not block.

        Returns the function that removes it again: an input restarted in-process adds a new one.
        """
        self._acker.add_listener(listener)
        return lambda: self._acker.remove_listener(listener)

    def committed(self) -> dict[str, Any]:
        """This input's committed cursors, {source: value}, as the registry holds them now.

        Read at each (re)start of the input: a supervisor restart must resume from what was
        acknowledged since the process started, not from what was on disk when it started.
        """
        return dict(self._read_committed())

    def saturated(self) -> bool:
        """True while `publish` would block: a source that can tell its sender to retry (HTTP 503 with
        Retry-After) asks this first instead of holding the sender's connection open."""
        return self._queue.full

    def wait_acked(self, timeout: float) -> bool:
        return self._acker.wait_all_done(timeout)

    def prepare(self, event: Event) -> Event | None:
        """The event as the output will see it (agent, module fields, processors…); None when a processor drops it.

        Public for `forwarder export`, which writes exactly what a run would ship without queueing it.
        """
        settings = self.settings
        raw = event.raw_fields
        if raw is not None and not (self._raw_fields_stay_raw and self._written_keys.isdisjoint(raw[1])):
            event.merge_raw_fields()
            raw = None
        if self._module_processors:
            mapped = self._run_processors(event, self._module_processors, mapping=True)
            if mapped is None:
                return None
            event = mapped
        event.record = None
        fields = event.fields
        fields["agent"] = dict(self._agent)
        fields["ecs"] = {"version": ECS_VERSION}
        # A record's own `host` or `input` that is not an object is kept as it is, as Filebeat's
        # no-overwrite merge of these fields does: the forwarder's values only fill objects or gaps.
        host = fields.setdefault("host", {}) if self._host_name is not None else None
        if isinstance(host, dict):
            host.setdefault("name", self._host_name)
        input_fields = fields.setdefault("input", {})
        if isinstance(input_fields, dict):
            input_fields.setdefault("type", settings.input_type)
        for key, value in settings.module_fields.items():
            existing = fields.get(key)
            if isinstance(existing, dict) and isinstance(value, dict):
                for sub_key, sub_value in value.items():
                    existing.setdefault(sub_key, sub_value)
            else:
                fields.setdefault(key, dict(value) if isinstance(value, dict) else value)
        if settings.tags:
            existing_tags = fields.get("tags")
            if existing_tags is None:
                existing_tags = []
            elif not isinstance(existing_tags, list):
                existing_tags = [existing_tags]  # a record's single tag, kept first
            fields["tags"] = existing_tags + [t for t in settings.tags if t not in existing_tags]
        if settings.fields:
            if settings.fields_under_root:
                for key, value in settings.fields.items():
                    fields[key] = _copy(value)
            else:
                fields["fields"] = _copy(settings.fields)
        if settings.ingest_pipeline:
            event.meta.setdefault("pipeline", settings.ingest_pipeline)
        processed = self._run_processors(event, self._processors, mapping=False)
        if processed is None:
            return None
        event = processed
        message = (event.fields if raw is None else raw[1]).get("message")
        event.size = 512 + (2 * len(message) if isinstance(message, str) else 1024)
        return event

    def _run_processors(self, event: Event, processors: list[Processor], mapping: bool) -> Event | None:
        """Runs processors in order; None when one drops the event. An event a processor fails on still ships.

        One error policy for every processor, the module's mapping and a plugin's alike: the event goes
        on as it was before that processor (the raw record in `message`), with `error.message` naming
        the processor (and, for a module's mapping, the `_parse_failure` tag), counted in the input's
        `mapping_failures` or `processor_failures`, logged once per processor and kind of error, and
        never retried, so one bad record cannot hold back those behind it. A processor must therefore
        finish its work before it changes the event.
        """
        for processor in processors:
            try:
                result = processor(event)
            except Exception as error:
                self._processor_failed(event, processor, error, mapping)
                return event
            if result is None:
                self.stats.filtered += 1
                return None
            event = result
        return event

    def _processor_failed(self, event: Event, processor: Processor, error: Exception, mapping: bool) -> None:
        name = getattr(processor, "__name__", type(processor).__name__)
        kind = type(error).__name__
        event.merge_raw_fields()  # `error` and `tags` below may be among the line's own fields
        fields = event.fields
        error_field = fields.get("error")
        if not isinstance(error_field, dict):
            error_field = fields["error"] = {}
        if mapping:
            error_field["message"] = f"cannot map the record to ECS ({name}): {kind}: {error}"
            tags = fields.get("tags")
            fields["tags"] = [*tags, PARSE_FAILURE_TAG] if isinstance(tags, list) else [PARSE_FAILURE_TAG]
        else:
            error_field["message"] = f"processor {name} failed: {kind}: {error}"
        counter = "mapping_failures" if mapping else "processor_failures"
        extra = self.stats.extra
        extra[counter] = extra.get(counter, 0) + 1
        if (name, kind) not in self._failures_logged:
            self._failures_logged.add((name, kind))
            log.warning("%s: processor %s failed on an event (%s: %s); it is forwarded as it was before that "
                        "processor, and further failures of this kind are only counted (%s in /stats)",
                        self.settings.input_id, name, kind, error, counter)


def _copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value
