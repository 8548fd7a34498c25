"""The `duo` input: Duo Admin API logs (authentication, administrator, telephony, activity, Trust Monitor,
offline enrollment) polled with signed requests, each record forwarded once.

One thread per input reads its streams in turn, each from its own cursor in the
registry (forwarder/inputs/duo_cursor.py). A window runs from the cursor to two
minutes before now, since Duo withholds its last two minutes; it is read page
by page (`limit` 1000), the next page requested while the current one is
published (one page of read-ahead: forwarder/net/read_ahead.py), and each page is published
as one chunk whose last event carries the cursor, so it commits only once the
page is acknowledged. The input decides what is new and moves the cursor; the
events are built by `build_duo_event` through `publish_raw`, in a worker
process when `forwarder.workers` runs some, which gets the page's raw bytes
(forwarder/inputs/api_pages.py). A window with nothing
new commits its end through `PipelineClient.commit`, after everything published
before it. A restart resumes from the committed cursor exactly: records on the
boundary come back from Duo and are skipped by the dedupe keys the cursor holds.

A refusal only the user can fix (signature, clock, permission) parks the input
with one line naming the fix; the runner retries it later. The input only
fetches: the ECS mapping is the `duo_ecs` processor, declared by the `duo`
module's filesets, or named by `standalone_processors` when the input is
configured on its own (the module's inputs never get both).
"""

from __future__ import annotations

import datetime
import time
from collections.abc import Callable
from functools import partial
from typing import Any

import orjson

from forwarder.inputs.api_pages import RawPage
from forwarder.inputs.base import InputContext, InputType, PermanentInputError
from forwarder.inputs.duo_config import MAX_LOOKBACK, DuoConfig, default_id, parse_config
from forwarder.inputs.duo_cursor import STREAMS, DuoCursor, DuoStream, dedupe_key, time_ms
from forwarder.net.duo_client_api import DuoAdminClient, DuoApiError, DuoBackoff, DuoCredentials
from forwarder.net.http_client import StopRequested
from forwarder.net.read_ahead import ReadAhead
from forwarder.pipeline.event import Event
from forwarder.pipeline.json_text import json_text
from forwarder.stats import InputStats

# Duo publishes a log record two minutes after it happened; a window never reaches closer to now than that.
WITHHELD_SECONDS = 120.0
PAGE_LIMIT = 1000
# A v1 log answers at most this many records per request, oldest first.
V1_PAGE = 1000
# Margin kept from Duo's 180-day limit on mintime, so a cursor clamped to it is still accepted a moment later.
LOOKBACK_MARGIN = 3600.0


class DuoInput:
    def __init__(self, config: DuoConfig, context: InputContext, clock: Callable[[], float] = time.time) -> None:
        self.config = config
        self.context = context
        self._clock = clock
        self._log = context.log

    def run(self) -> None:
        config = self.config
        api = DuoAdminClient(
            DuoCredentials(config.api_hostname, config.integration_key, config.secret_key),
            self.context.stop, self._log, ca_bundle=config.ca_bundle, proxy_url=config.proxy_url,
            backoff=DuoBackoff(config.backoff_init, config.backoff_max), clock=self._clock,
        )
        try:
            cursors = self._starting_cursors()
            self.context.stats.state = "running"
            while not self.context.stop.is_set():
                for name in config.streams:
                    if not self._poll(api, STREAMS[name], cursors[name]):
                        return
                    self._show_progress(api, name, cursors[name])
                self.context.stop.wait(config.poll_interval)
        except StopRequested:
            return
        except DuoApiError as error:
            self._show_progress(api, None, None)
            self.context.stats.error(error.message)
            raise PermanentInputError(error.message) from None
        finally:
            api.close()

    def _starting_cursors(self) -> dict[str, DuoCursor]:
        """Each stream's committed cursor; a new stream's start is committed at once so a restart keeps it."""
        committed = self.context.client.committed()
        cursors = {}
        for name in self.config.streams:
            stream = STREAMS[name]
            cursor = None
            if committed.get(name) is not None:
                try:
                    cursor = DuoCursor.from_json(committed[name])
                except ValueError as error:
                    self._log.warning("%s: the stored cursor of %s is unreadable (%s): reading the last %.0f s again",
                                      self.context.input_id, name, error, self.config.initial_lookback)
            if cursor is None:
                cursor = DuoCursor(time_ms(stream, self._clock() - self.config.initial_lookback))
                self.context.client.commit({name: cursor.to_json()})
            cursors[name] = cursor
        return cursors

    def _poll(self, api: DuoAdminClient, stream: DuoStream, cursor: DuoCursor) -> bool:
        """Reads the stream's windows up to two minutes ago; False when the forwarder is stopping."""
        self._clamp_to_retention(stream, cursor)
        while not self.context.stop.is_set():
            newest = time_ms(stream, self._clock() + min(0.0, api.clock_offset or 0.0) - WITHHELD_SECONDS)
            end = newest if stream.max_window_ms is None else min(newest, cursor.since + stream.max_window_ms)
            if end <= cursor.since:
                return True
            complete = self._read_window(api, stream, cursor, end)
            if complete is None:
                return False
            if not complete:
                return True
            cursor.completed(end)
            self.context.client.commit({stream.name: cursor.to_json()})
            if end == newest:
                return True
        return False

    def _clamp_to_retention(self, stream: DuoStream, cursor: DuoCursor) -> None:
        """After an outage longer than Duo keeps logs, start from the oldest time Duo still answers for."""
        oldest = time_ms(stream, self._clock() - MAX_LOOKBACK + LOOKBACK_MARGIN)
        if cursor.since < oldest:
            self._log.warning("%s: %s: the cursor is older than the 180 days Duo keeps; records before %s are gone",
                              self.context.input_id, stream.name, _iso(oldest))
            cursor.since, cursor.seen = oldest, {}

    def _read_window(self, api: DuoAdminClient, stream: DuoStream, cursor: DuoCursor, end: int) -> bool | None:
        """Delivers the new records up to `end` (ms); True when the window is complete, False when it must be
        read again at the next poll, None when stopping."""
        if stream.paging == "v1":
            return self._read_v1_window(api, stream, cursor, end)
        params: dict[str, str | list[str]] = {"mintime": str(cursor.since), "maxtime": str(end),
                                              "limit": str(PAGE_LIMIT)}
        if stream.paging != "trust_monitor":
            params["sort"] = "ts:asc"
        offset_name = "offset" if stream.paging == "trust_monitor" else "next_offset"
        page = _request_page(api, stream, params)
        while True:
            body, raw = page.result()
            records, next_offset = _page(stream, body)
            following = None
            if next_offset is not None and records:
                params[offset_name] = next_offset
                following = _request_page(api, stream, params)
            if not self._deliver(stream, cursor, RawPage(stream.name, raw, records, decode_page), end):
                return None
            if following is None:
                return True
            page = following

    def _read_v1_window(self, api: DuoAdminClient, stream: DuoStream, cursor: DuoCursor, end: int) -> bool | None:
        """v1 logs take only `mintime` (seconds) and answer up to 1000 records oldest first: page by mintime."""
        while True:
            before = cursor.since
            body, raw = api.get_page(stream.path, {"mintime": str(cursor.since // 1000)})
            records, _ = _page(stream, body)
            if not self._deliver(stream, cursor, RawPage(stream.name, raw, records, decode_page), end):
                return None
            if len(records) < V1_PAGE or any(_time_ms(stream, record, end) > end for record in records):
                return True
            if cursor.since == before:
                self._log.warning("%s: %s: more than %d records share the second %s; Duo's v1 paging cannot get "
                                  "past it, trying again at the next poll", self.context.input_id, stream.name,
                                  V1_PAGE, _iso(before))
                return False

    def _deliver(self, stream: DuoStream, cursor: DuoCursor, page: RawPage, end: int) -> bool:
        """Publishes the records not delivered yet as one chunk; the last one carries the cursor. False when
        stopping. The dedupe and the cursor are decided here; the events are built by `build_duo_event`."""
        fresh = []
        for index, record in enumerate(page.records()):
            if not isinstance(record, dict):
                self._log.warning("%s: %s: skipped a log entry that is not a JSON object: %.200r",
                                  self.context.input_id, stream.name, record)
                continue
            when = stream.record_time(record)
            when_ms = cursor.since if when is None else time_ms(stream, when)
            key = dedupe_key(stream, record)
            if when_ms > end or key in cursor.seen:
                continue
            cursor.delivered(stream, key, when_ms)
            fresh.append((index, self._clock() if when is None else when, key))
        return not fresh or self.context.client.publish_raw(build_duo_event, page, fresh,
                                                            {stream.name: cursor.to_json()})

    def _show_progress(self, api: DuoAdminClient, name: str | None, cursor: DuoCursor | None) -> None:
        extra = self.context.stats.extra
        extra.update(api.stats.snapshot())
        if name is not None and cursor is not None:
            extra[f"{name}_read_until"] = _iso(cursor.since)


def build_duo_event(page: RawPage, payload: tuple[int, float, str], stats: InputStats) -> Event:
    """The event of one Duo record: (its position in the page, time, dedupe key) from `_deliver`. Runs in this
    process or in a worker process, so it uses nothing but its arguments."""
    index, when, key = payload
    record = page.records()[index]
    return Event({"message": json_text(record)}, when, {"_id": key}, record=record, record_kind=page.kind)


def _request_page(api: DuoAdminClient, stream: DuoStream, params: dict[str, str | list[str]]
                  ) -> ReadAhead[tuple[dict[str, Any], bytes]]:
    """The page's GET started now on its own thread (api.get_page: 429 backoff, retries, stop, refusals as
    always)."""
    return ReadAhead(partial(api.get_page, stream.path, dict(params)), f"duo-{stream.name}-page")


def decode_page(stream_name: str, body: bytes) -> list[Any]:
    """The records of a raw answer, decoded as DuoAdminClient decodes it, in the same order (api_pages.PageDecoder)."""
    return _page(STREAMS[stream_name], orjson.loads(body))[0]


def _page(stream: DuoStream, body: dict[str, Any]) -> tuple[list[Any], str | list[str] | None]:
    """(records, next offset) of one answer; Duo puts `metadata` inside `response` (v2) or beside it."""
    response = body.get("response")
    if stream.paging == "v1":
        return (response if isinstance(response, list) else []), None
    if not isinstance(response, dict):
        return [], None
    records = response.get(stream.records_key)
    metadata = response.get("metadata") or body.get("metadata") or {}
    next_offset = metadata.get("next_offset") if isinstance(metadata, dict) else None
    if isinstance(next_offset, list):
        next_offset = [str(part) for part in next_offset] or None
    elif next_offset is not None:
        next_offset = str(next_offset) or None
    return (records if isinstance(records, list) else []), next_offset


def _time_ms(stream: DuoStream, record: Any, default: int) -> int:
    when = stream.record_time(record) if isinstance(record, dict) else None
    return default if when is None else time_ms(stream, when)


def _iso(millis: int) -> str:
    moment = datetime.datetime.fromtimestamp(millis / 1000, datetime.UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def standalone_processors(config: DuoConfig) -> list[dict[str, Any]]:
    """What maps the records of a `duo` input configured without the duo module, as the module would."""
    if config.normalize:
        return [{"duo_ecs": {"preserve_original_event": config.preserve_original_event}}]
    if config.preserve_original_event:
        return [{"copy_fields": {"fields": [{"from": "message", "to": "event.original"}]}}]
    return []


def create(config: DuoConfig, context: InputContext) -> DuoInput:
    return DuoInput(config, context)


INPUT_TYPE = InputType("duo", parse_config, create, default_id, standalone_processors)
