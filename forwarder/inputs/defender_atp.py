"""The `defender-atp` input: Microsoft Defender for Endpoint alerts, each update of an alert forwarded once.

It reads `/api/alerts` in windows of last-update time, the way the `graph`
input reads Graph (and with its cursor: `GraphCursor`, `PollWindowPlanner`):
each page's new events go to the pipeline together, the cursor with the last
of them, and it commits once that page is acknowledged; the dedupe key `id|lastUpdateTime`,
remembered in the cursor, stops a re-read page (after a crash, or the
overlap of the next window) from being forwarded twice, while a later update
of an alert has a new key and is forwarded again.

Tokens and the request budget (100 calls a minute, 1,500 an hour by default)
are the app's, shared by every poller of that app and tenant in the process.
The input only fetches and dedupes: an event is the alert's JSON text with the
alert in `event.record`, built by `build_alert_events` from what the input hands
to `publish_raw` (in a worker process with `forwarder.workers`); the `microsoft`
module's processor maps it to ECS.
With `split_evidence`, an alert becomes one event per evidence (Filebeat's
shape), each with its own `_id`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from forwarder.inputs.base import InputContext, InputType, PermanentInputError
from forwarder.inputs.defender_atp_client import AlertsClient, DefenderApiError
from forwarder.inputs.defender_atp_config import KNOWN_HOSTS, DefenderAtpConfig, default_id, parse_config
from forwarder.inputs.graph import MAX_CHUNK, next_chunk
from forwarder.inputs.graph_cursor import GraphCursor, PollWindow, PollWindowPlanner
from forwarder.inputs.graph_payloads import builds_elsewhere, payload_record, record_payload
from forwarder.net import shared_clients
from forwarder.net.http_client import HttpClient, HttpSettings, StopRequested
from forwarder.net.tokens import ClientCredential, CredentialError
from forwarder.pipeline.event import Event, parse_timestamp
from forwarder.pipeline.json_text import json_text
from forwarder.stats import InputStats

STREAM = "alerts"
USER_AGENT = "MdatpPartner-Forwarder/1.0"


def dedupe_key(alert: dict[str, Any]) -> str:
    return f"{alert.get('id', '')}|{alert.get('lastUpdateTime', '')}"


def alert_time(alert: dict[str, Any]) -> float | None:
    value = alert.get("lastUpdateTime")
    if type(value) is not str or not value:
        return None
    try:
        return parse_timestamp(value)
    except (ValueError, OverflowError, OSError):
        return None


def alert_events(alert: dict[str, Any], key: str, timestamp: float, split_evidence: bool,
                 text: str | None = None) -> list[Event]:
    """The events of one alert update: one, or (split_evidence) one per evidence, each with its own `_id`.

    `text` is the alert's JSON text when the caller has it already.
    """
    evidence = alert.get("evidence")
    if not split_evidence or type(evidence) is not list or not evidence:
        message = json_text(alert) if text is None else text
        return [Event({"message": message}, timestamp, {"_id": key}, record=alert, record_kind=STREAM)]
    events = []
    for position, item in enumerate(evidence):
        record = {**alert, "evidence": item}
        events.append(Event({"message": json_text(record)}, timestamp, {"_id": f"{key}|{position}"},
                            record=record, record_kind=STREAM))
    return events


def build_alert_events(split_evidence: bool, payload: tuple[Any, str, float], stats: InputStats) -> list[Event]:
    """`publish_raw`'s builder for one new alert update: payload (alert or its JSON, dedupe key, timestamp)."""
    carried, key, timestamp = payload
    alert, text = payload_record(carried)
    return alert_events(alert, key, timestamp, split_evidence, text)


class DefenderAtpInput:
    def __init__(self, config: DefenderAtpConfig, context: InputContext,
                 clock: Callable[[], float] = time.time) -> None:
        self.config = config
        self.context = context
        self._clock = clock
        self._planner = PollWindowPlanner(config.late_arrival_window, config.initial_lookback, MAX_CHUNK, clock)
        self._chunk = MAX_CHUNK

    def run(self) -> None:
        stop = self.context.stop
        host = urlsplit(self.config.api_url).hostname
        if host not in KNOWN_HOSTS:
            self.context.log.info("%s: api_host %s is not a Defender for Endpoint API host; using it as given "
                                  "(a proxy or a test double)", self.context.input_id, host)
        try:
            alerts = connect_defender(self.config, stop, self.context.log)
        except CredentialError as error:
            raise PermanentInputError(error.message) from None
        try:
            cursor = self._starting_cursor()
            self.context.stats.state = "running"
            while not stop.is_set():
                cursor = self._catch_up(alerts, cursor)
                if cursor is None:
                    return
                self.context.stats.extra.update(alerts.http.stats.snapshot())
                stop.wait(self.config.interval)
        except StopRequested:
            return
        except (CredentialError, DefenderApiError) as error:
            self.context.stats.error(error.message)
            raise PermanentInputError(error.message) from None
        finally:
            alerts.http.close()

    def _starting_cursor(self) -> GraphCursor:
        """The committed cursor; a first start's is committed at once, so a restart keeps its start."""
        value = self.context.client.committed().get(STREAM)
        cursor = None
        if value is not None:
            try:
                cursor = GraphCursor.from_json(value)
            except ValueError as error:
                self.context.log.warning("%s: the stored cursor is unreadable (%s): reading the last %s s again",
                                         self.context.input_id, error, self.config.initial_lookback)
        if cursor is None or cursor.until is None:
            cursor = self._planner.first_cursor()
            self.context.client.commit({STREAM: cursor.to_json()})
        return cursor

    def _catch_up(self, alerts: AlertsClient, cursor: GraphCursor) -> GraphCursor | None:
        """Reads windows until now; the new cursor, or None when the forwarder is stopping."""
        while not self.context.stop.is_set():
            window = self._planner.next_window(cursor, self._chunk)
            new_time = window.end - (cursor.until or window.start)
            capped = window.end < window.read_at
            listed = self._read_window(alerts, cursor, window)
            if listed is None:
                return None
            if capped:
                self._chunk = next_chunk(new_time, listed)
            cursor = self._planner.completed(cursor, window)
            self.context.client.commit({STREAM: cursor.to_json()})
            if not capped:
                return cursor
        return None

    def _read_window(self, alerts: AlertsClient, cursor: GraphCursor, window: PollWindow) -> int | None:
        """Delivers the window's new alert updates; how many alerts were listed, None when stopping."""
        listed = 0
        client = self.context.client
        for page in alerts.pages(window.start, window.end, self.config.page_size):
            listed += len(page)
            elsewhere = builds_elsewhere(client)
            fresh: list[tuple[Any, str, float]] = []
            for alert in page:
                key = dedupe_key(alert)
                if cursor.has_seen(key):
                    continue
                when = alert_time(alert)
                cursor.remember(key, window.end if when is None else when)
                fresh.append((record_payload(alert, elsewhere), key, when or self._clock()))
            if fresh and not client.publish_raw(build_alert_events, self.config.split_evidence, fresh,
                                                {STREAM: cursor.to_json()}):
                return None
        return listed


def connect_defender(config: DefenderAtpConfig, stop: threading.Event, log: logging.Logger) -> AlertsClient:
    """An alerts client on the app's process-wide token and request budget."""
    credential = ClientCredential.from_settings(config.client_secret, config.certificate, config.key,
                                                config.key_passphrase)
    api = shared_clients.DEFENDER_ENDPOINT
    tokens = shared_clients.token_provider(api, config.login_endpoint, config.tenant_id, config.client_id,
                                           credential, config.scope, config.ca_bundle, config.proxy_url)
    pacer = shared_clients.request_pacer(api, config.login_endpoint, config.tenant_id, config.client_id,
                                         [(config.requests_per_minute, 60.0), (config.requests_per_hour, 3600.0)])
    settings = HttpSettings(ca_bundle=config.ca_bundle, proxy_url=config.proxy_url, user_agent=USER_AGENT)
    http = HttpClient(settings, token_provider=tokens, pacer=pacer, stop=stop, logger=log)
    return AlertsClient(http, config.api_url)


def standalone_processors(config: DefenderAtpConfig) -> list[dict[str, Any]]:
    """A `defender-atp` input configured without the module maps its alerts as the module does."""
    return [{"microsoft_defender_atp": {}}]


def create(config: DefenderAtpConfig, context: InputContext) -> DefenderAtpInput:
    return DefenderAtpInput(config, context)


INPUT_TYPE = InputType("defender-atp", parse_config, create, default_id, standalone_processors)
