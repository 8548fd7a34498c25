"""The `graph` input: Entra ID logs polled from Microsoft Graph, each record forwarded once.

One thread per input reads its streams (one per record type) in turn. Each
stream's cursor lives in the registry and is handed to the pipeline with the
last new event of every page, so it commits only once the whole page is
acknowledged: a crash re-reads at most the pages not yet acknowledged, and the
remembered dedupe keys stop the overlap from being forwarded twice.

The input only fetches and dedupes: an event is the record's JSON text, its
time, its dedupe key and the record itself, built by `build_record_event` from
what the input hands to `publish_raw` (in a worker process with
`forwarder.workers`, next to the mapping). The ECS mapping is the `entraid_ecs`
processor, declared by the entraid module's filesets, or named by
`standalone_processors` when the input is configured on its own.
"""

from __future__ import annotations

import datetime
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from forwarder.inputs.base import InputContext, InputType, PermanentInputError
from forwarder.inputs.graph_config import GraphConfig, default_id, parse_config, streams
from forwarder.inputs.graph_cursor import GraphCursor, PollWindow, PollWindowPlanner
from forwarder.inputs.graph_payloads import builds_elsewhere, payload_record, record_payload
from forwarder.net import shared_clients
from forwarder.net.credential_expiry import credential_expiry
from forwarder.net.graph_client import ENDPOINTS, GraphClient, GraphPermanentError
from forwarder.net.http_client import HttpClient, HttpSettings, StopRequested
from forwarder.net.tokens import ClientCredential, CredentialError
from forwarder.pipeline.event import Event, parse_timestamp
from forwarder.pipeline.json_text import json_text
from forwarder.stats import InputStats

# A backfill commits progress every chunk of new time: at most an hour, shorter when an hour holds more than
# CHUNK_RECORDS records, because the cursor carries a dedupe key per record of its window (and the acker holds a
# copy of the cursor per page in flight): a dense tenant must not make either grow without bound.
MAX_CHUNK = 3600.0
MIN_CHUNK = 60.0
CHUNK_RECORDS = 20_000
# The credential's end date is read once a day (it changes only when someone edits the app registration).
CREDENTIAL_CHECK_INTERVAL = 86400.0
# Records Microsoft updates in place: an update is a new delivery, keyed on id + last-update time.
UPDATED_IN_PLACE = {
    "alert": "lastUpdateDateTime",
    "incident": "lastUpdateDateTime",
    "risk_detection": "lastUpdatedDateTime",
    "risky_user": "riskLastUpdatedDateTime",
}


def dedupe_key(record: dict[str, Any], record_type: str) -> str:
    record_id = str(record.get("id", ""))
    update_field = UPDATED_IN_PLACE.get(record_type)
    if update_field is None:
        return record_id
    return f"{record_id}|{record.get(update_field, '')}"


class GraphInput:
    def __init__(self, config: GraphConfig, context: InputContext, clock: Callable[[], float] = time.time) -> None:
        self.config = config
        self.context = context
        self._clock = clock
        self._planner = PollWindowPlanner(config.late_arrival_window, config.initial_lookback, MAX_CHUNK, clock)
        self._log = context.log
        self._next_expiry_check = 0.0
        self._chunks: dict[str, float] = {}

    def run(self) -> None:
        stop = self.context.stop
        try:
            graph = connect_graph(self.config, stop, self._log)
        except CredentialError as error:
            raise PermanentInputError(error.message) from None
        try:
            cursors = self._starting_cursors()
            self.context.stats.state = "running"
            while not stop.is_set():
                self._check_credential_expiry(graph)
                for stream in streams(self.config):
                    if not self._catch_up(graph, stream, cursors):
                        return
                    self.context.stats.extra.update(graph.http.stats.snapshot())
                stop.wait(self.config.poll_interval)
        except StopRequested:
            return
        except CredentialError as error:
            self.context.stats.error(error.message)
            raise PermanentInputError(error.message) from None
        except GraphPermanentError as error:
            self.context.stats.error(error.message)
            raise PermanentInputError(error.message) from None
        finally:
            graph.http.close()

    def _check_credential_expiry(self, graph: GraphClient) -> None:
        """Once a day: the credential's end date in /stats, and a warning in its last 30 days."""
        now = self._clock()
        if now < self._next_expiry_check:
            return
        self._next_expiry_check = now + CREDENTIAL_CHECK_INTERVAL
        config = self.config
        expiry = credential_expiry(app_credential(config), graph.http, config.graph_endpoint, config.client_id)
        self.context.stats.extra.update(expiry.as_stats())
        moment = datetime.datetime.fromtimestamp(now, datetime.UTC)
        if expiry.expires_soon(moment):
            self._log.warning("%s: %s", self.context.input_id, expiry.warning(config.client_id, moment))
        elif expiry.expires is None:
            self._log.info("%s: cannot tell when the %s expires: %s", self.context.input_id, expiry.description,
                           expiry.unknown_reason)

    def _starting_cursors(self) -> dict[str, GraphCursor]:
        """Each stream's committed cursor; a new stream's start is committed at once so a restart keeps it."""
        committed = self.context.client.committed()
        cursors = {}
        for stream in streams(self.config):
            value = committed.get(stream)
            cursor = None
            if value is not None:
                try:
                    cursor = GraphCursor.from_json(value)
                except ValueError as error:
                    self._log.warning("%s: the stored cursor of %s is unreadable (%s): reading the last %s s again",
                                      self.context.input_id, stream, error, self.config.initial_lookback)
            if cursor is None or cursor.until is None:
                cursor = self._planner.first_cursor()
                self.context.client.commit({stream: cursor.to_json()})
            cursors[stream] = cursor
        return cursors

    def _catch_up(self, graph: GraphClient, stream: str, cursors: dict[str, GraphCursor]) -> bool:
        """Reads windows of one stream until it reaches now; False when the forwarder is stopping."""
        while not self.context.stop.is_set():
            cursor = cursors[stream]
            chunk = self._chunks.get(stream, MAX_CHUNK)
            window = self._planner.next_window(cursor, chunk)
            new_time = window.end - (cursor.until or window.start)
            capped = window.end < window.read_at
            listed = self._read_window(graph, stream, cursor, window)
            if listed is None:
                return False
            if capped:
                self._chunks[stream] = next_chunk(new_time, listed)
            cursors[stream] = self._planner.completed(cursor, window)
            self.context.client.commit({stream: cursors[stream].to_json()})
            if not capped:
                return True
        return False

    def _read_window(self, graph: GraphClient, stream: str, cursor: GraphCursor, window: PollWindow) -> int | None:
        """Delivers the window's new records; returns how many records Graph listed, None when stopping.

        A page's new records go to the pipeline as one chunk, the cursor with the last, so it commits once the
        whole page is acknowledged; `build_record_event` makes their events (graph_payloads).
        """
        sign_in_types = self.config.sign_in_types if stream == "signinlogs" else None
        client = self.context.client
        listed = 0
        for page in graph.pages(stream, window.start, window.end, self.config.page_size, sign_in_types):
            listed += len(page)
            elsewhere = builds_elsewhere(client)
            fresh = []
            for record in page:
                if not isinstance(record, dict):
                    continue
                key = dedupe_key(record, stream)
                if cursor.has_seen(key):
                    continue
                when = record_time(record, stream)
                cursor.remember(key, window.end if when is None else when)
                fresh.append((record_payload(record, elsewhere), key, when or self._clock()))
            if fresh and not client.publish_raw(build_record_event, stream, fresh, {stream: cursor.to_json()}):
                return None
        return listed


def next_chunk(new_time: float, listed: int) -> float:
    """The next backfill chunk: sized to hold about CHUNK_RECORDS records at the density just read."""
    if listed <= 0:
        return MAX_CHUNK
    return max(MIN_CHUNK, min(MAX_CHUNK, new_time * CHUNK_RECORDS / listed))


def app_credential(config: GraphConfig) -> ClientCredential:
    return ClientCredential.from_settings(config.client_secret, config.certificate, config.key, config.key_passphrase)


def connect_graph(
    config: GraphConfig, stop: threading.Event, log: logging.Logger, max_attempts: int | None = None
) -> GraphClient:
    """A Graph client on the app's process-wide token and request budget; an input retries forever, an export
    gives up."""
    tokens = shared_clients.token_provider(
        shared_clients.GRAPH, config.login_endpoint, config.tenant_id, config.client_id, app_credential(config),
        config.scope, ca_bundle=config.ca_bundle, proxy_url=config.proxy_url,
    )
    pacer = shared_clients.request_pacer(shared_clients.GRAPH, config.login_endpoint, config.tenant_id,
                                         config.client_id, [(config.requests_per_10s, 10.0)])
    settings = HttpSettings(ca_bundle=config.ca_bundle, proxy_url=config.proxy_url, max_attempts=max_attempts)
    http = HttpClient(settings, token_provider=tokens, pacer=pacer, stop=stop, logger=log)
    return GraphClient(http, config.graph_endpoint)


def record_event(record: dict[str, Any], stream: str, key: str, timestamp: float) -> Event:
    """The event the input publishes for one Graph record: its JSON text, unmapped (see `standalone_processors`).

    `timestamp` is the record's `record_time`, or the time it was read when it has none (or 0); the
    mapping replaces it with the record's own event time.
    """
    return Event({"message": json_text(record)}, timestamp, {"_id": key}, record=record, record_kind=stream)


def build_record_event(stream: str, payload: tuple[Any, str, float], stats: InputStats) -> Event:
    """`publish_raw`'s builder for one new Graph record: payload (record or its JSON, dedupe key, timestamp)."""
    carried, key, timestamp = payload
    record, text = payload_record(carried)
    return Event({"message": text}, timestamp, {"_id": key}, record=record, record_kind=stream)


def record_time(record: dict[str, Any], stream: str) -> float | None:
    """The time a poll of `stream` filters on (epoch seconds), None when the record has no readable one.

    It is the event time for append-only logs and the last-update time for records Microsoft updates in
    place, so a window holds exactly the records Graph lists for it. Graph writes ISO 8601 times.
    """
    endpoint = ENDPOINTS.get(stream)
    value = record.get(endpoint.time_field) if endpoint is not None else None
    if type(value) is not str or not value:
        return None
    try:
        return parse_timestamp(value)
    except (ValueError, OverflowError, OSError):
        return None


def standalone_processors(config: GraphConfig) -> list[dict[str, Any]]:
    """What maps the records of a `graph` input configured without the entraid module, as the module would."""
    if config.normalize:
        return [{"entraid_ecs": {"preserve_original_event": config.preserve_original_event}}]
    if config.preserve_original_event:
        return [{"copy_fields": {"fields": [{"from": "message", "to": "event.original"}]}}]
    return []


def create(config: GraphConfig, context: InputContext) -> GraphInput:
    return GraphInput(config, context)


def polled_streams(config: GraphConfig) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The app this input polls Graph as (login host, Graph host, tenant, client id) and the streams it reads."""
    source = (config.login_endpoint.lower(), config.graph_endpoint.lower(), config.tenant_id.lower(),
              config.client_id.lower())
    return source, tuple(streams(config))


INPUT_TYPE = InputType("graph", parse_config, create, default_id, standalone_processors, polled_streams)
