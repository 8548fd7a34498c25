"""The `cisco-secure-endpoint` input: Cisco Secure Endpoint (AMP for Endpoints) events from `GET /v1/events`.

One thread per input polls every `interval`: a run reads all pages from the
cursor's inclusive `start_date` through `metadata.links.next` (the next page
requested while the current one is published: forwarder/net/read_ahead.py),
publishes each page's events not delivered yet as one chunk, and moves the
cursor (forwarder/inputs/secure_endpoint_cursor.py) only with the events that
carry it, so it is committed once they are acknowledged. The input decides what
is new and moves the cursor; the events are built by
`build_secure_endpoint_event` through `publish_raw`, in a worker process when
`forwarder.workers` runs some, which gets the page's raw bytes (forwarder/inputs/api_pages.py). Events on the
boundary second come back from Cisco and are skipped by their id (or Elastic's
fingerprint); an event seen twice within one run (new events shift Cisco's
offsets while we page) is published once.

The hourly request quota, 429s and retries are the client's
(forwarder/inputs/secure_endpoint_client.py). A refusal only the user can fix
(401, 403, 400, TLS) parks the input with one line naming the fix. The input
only fetches: the ECS mapping is the `cisco_secure_endpoint` processor.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import partial
from typing import Any
from urllib.parse import urlsplit

from forwarder.inputs.api_pages import RawPage
from forwarder.inputs.base import InputContext, InputType, PermanentInputError
from forwarder.inputs.secure_endpoint_client import SecureEndpointClient, SecureEndpointRefused, decode_body
from forwarder.inputs.secure_endpoint_config import SecureEndpointConfig, default_id, parse_config
from forwarder.inputs.secure_endpoint_cursor import (
    Run,
    SecureEndpointCursor,
    date_epoch,
    event_key,
    start_date_text,
)
from forwarder.net.http_client import StopRequested
from forwarder.net.read_ahead import ReadAhead
from forwarder.pipeline.event import Event
from forwarder.pipeline.json_text import json_text
from forwarder.stats import InputStats

CURSOR_NAME = "events"
RECORD_KIND = "secure_endpoint"


class SecureEndpointInput:
    def __init__(self, config: SecureEndpointConfig, context: InputContext,
                 clock: Callable[[], float] = time.time) -> None:
        self.config = config
        self.context = context
        self._clock = clock
        self._log = context.log
        self.boundary_repeats = 0
        self.page_repeats = 0

    def run(self) -> None:
        client = SecureEndpointClient(self.config, self.context.stop, self._log)
        try:
            cursor = self._starting_cursor()
            self.context.stats.state = "running"
            while not self.context.stop.is_set():
                if not self._poll(client, cursor):
                    return
                self._show_progress(client, cursor)
                self.context.stop.wait(self.config.interval)
        except StopRequested:
            return
        except SecureEndpointRefused as error:
            self._show_progress(client, None)
            self.context.stats.error(error.message)
            raise PermanentInputError(error.message) from None
        finally:
            client.close()

    def _starting_cursor(self) -> SecureEndpointCursor:
        """The committed cursor; a first start's is committed at once so a restart keeps its start date."""
        stored = self.context.client.committed().get(CURSOR_NAME)
        if stored is not None:
            try:
                return SecureEndpointCursor.from_json(stored)
            except ValueError as error:
                self._log.warning("%s: the stored cursor is unreadable (%s): reading the last %.0f s again",
                                  self.context.input_id, error, self.config.first_interval)
        cursor = SecureEndpointCursor(int(self._clock() - self.config.first_interval))
        self.context.client.commit({CURSOR_NAME: cursor.to_json()})
        return cursor

    def _poll(self, client: SecureEndpointClient, cursor: SecureEndpointCursor) -> bool:
        """One run over every page from the cursor; False when the forwarder is stopping."""
        run = cursor.run or Run()
        cursor.run = run
        url: str = run.next_url or self.config.events_url
        params = None if run.next_url else self._first_page_params(cursor)
        delivered: set[str] = set()
        page = ReadAhead(partial(client.get_page, url, params), "secure-endpoint-page")
        while True:
            body, raw = page.result()
            events, next_url = self._page(body)
            following = None
            if next_url is not None:
                following = ReadAhead(partial(client.get_page, next_url), "secure-endpoint-page")
            fresh = [self._payload(index, record, cursor, run, delivered) for index, record in enumerate(events)]
            run.next_url = next_url
            if next_url is None:
                cursor.completed(run)
            state = {CURSOR_NAME: cursor.to_json()}
            payloads = [payload for payload in fresh if payload is not None]
            if not payloads:
                self.context.client.commit(state)
            elif not self.context.client.publish_raw(build_secure_endpoint_event,
                                                     RawPage(RECORD_KIND, raw, events, decode_page), payloads, state):
                return False
            if following is None:
                return True
            page = following

    def _first_page_params(self, cursor: SecureEndpointCursor) -> list[tuple[str, str]]:
        params = [("start_date", start_date_text(cursor.start)), ("limit", str(self.config.limit))]
        params += [("event_type[]", str(type_id)) for type_id in self.config.event_types]
        return params

    def _page(self, body: dict[str, Any]) -> tuple[list[Any], str | None]:
        """(events, next page URL) of one answer; a next link to another host is refused, not followed."""
        data = body.get("data")
        metadata = body.get("metadata")
        links = metadata.get("links") if isinstance(metadata, dict) else None
        next_url = links.get("next") if isinstance(links, dict) else None
        if not isinstance(next_url, str) or not next_url:
            next_url = None
        elif _origin(next_url) != _origin(self.config.base_url):
            raise SecureEndpointRefused(f"the API's next page link points to {_origin(next_url)}, not "
                                        f"{_origin(self.config.base_url)}: the API key is not sent there; check url")
        return (data if isinstance(data, list) else []), next_url

    def _payload(self, index: int, record: Any, cursor: SecureEndpointCursor, run: Run, delivered: set[str]
                 ) -> tuple[int, float, str] | None:
        """What `build_secure_endpoint_event` needs to publish the page's `index`th record, or None for a repeat
        (counted) or a non-object (logged)."""
        if not isinstance(record, dict):
            self._log.warning("%s: skipped an event that is not a JSON object: %.200r", self.context.input_id, record)
            return None
        key = event_key(record)
        when = date_epoch(record.get("date"))
        if cursor.is_boundary_repeat(when, key):
            self.boundary_repeats += 1
            return None
        if key in delivered:
            self.page_repeats += 1
            return None
        delivered.add(key)
        run.delivered(when, key)
        return index, _event_time(record, when, self._clock), key

    def _show_progress(self, client: SecureEndpointClient, cursor: SecureEndpointCursor | None) -> None:
        extra = self.context.stats.extra
        extra.update(client.snapshot())
        extra.update(boundary_repeats_skipped=self.boundary_repeats, page_repeats_skipped=self.page_repeats)
        if cursor is not None:
            extra["read_from"] = start_date_text(cursor.start)


def build_secure_endpoint_event(page: RawPage, payload: tuple[int, float, str], stats: InputStats) -> Event:
    """The event of one Secure Endpoint event: (its position in the page, time, key) from `_payload`. Runs in
    this process or in a worker process, so it uses nothing but its arguments."""
    index, when, key = payload
    record = page.records()[index]
    return Event({"message": json_text(record)}, when, {"_id": key}, record=record, record_kind=page.kind)


def decode_page(_kind: str, body: bytes) -> list[Any]:
    """The events of a raw answer, decoded as SecureEndpointClient decodes it, in the same order."""
    data = decode_body(body).get("data")
    return data if isinstance(data, list) else []


def _event_time(record: dict[str, Any], when: int | None, clock: Callable[[], float]) -> float:
    """`timestamp` plus `timestamp_nanoseconds` when given, else `date`, else now."""
    seconds = record.get("timestamp")
    if type(seconds) in (int, float) and seconds > 0:
        nanos = record.get("timestamp_nanoseconds")
        return seconds + (nanos / 1e9 if type(nanos) is int and 0 <= nanos < 1_000_000_000 else 0.0)
    return float(when) if when is not None else clock()


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def standalone_processors(config: SecureEndpointConfig) -> list[dict[str, Any]]:
    """What maps the events of an input configured without the cisco module, as the module's amp fileset would."""
    return [{"cisco_secure_endpoint": {}}] if config.normalize else []


def create(config: SecureEndpointConfig, context: InputContext) -> SecureEndpointInput:
    return SecureEndpointInput(config, context)


INPUT_TYPE = InputType("cisco-secure-endpoint", parse_config, create, default_id, standalone_processors)
