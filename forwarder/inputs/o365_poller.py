"""The pollers of the `o365audit` input: one thread per tenant × content type, and what one tenant's share.

A poller lists windows of content (forwarder/inputs/o365_cursor.py plans them)
and publishes the records of every blob not yet delivered in chunks, each with a cursor naming
the blob and the next record, so a restart resumes inside the blob it was reading.
It is handed what it uses (the publish_raw and commit functions, the input's halt
event, a stats sink, its HTTP settings and logger) rather than the input that
runs it, so it can be read, and tested, on its own.
"""

from __future__ import annotations

import dataclasses
import datetime
import logging
import threading
import time
from collections.abc import Callable
from functools import lru_cache
from typing import Any

from forwarder.inputs.graph_payloads import payload_record, record_payload
from forwarder.inputs.o365_config import O365Config, source_name
from forwarder.inputs.o365_cursor import ListWindow, ListWindowPlanner, O365Cursor
from forwarder.net import shared_clients
from forwarder.net.http_client import HttpClient, HttpSettings, StopRequested
from forwarder.net.management_client import ContentBlob, ErrorKind, ManagementApiError, ManagementClient
from forwarder.net.tokens import ClientCredential, CredentialError
from forwarder.pipeline.client import Builder
from forwarder.pipeline.event import Event, parse_timestamp
from forwarder.pipeline.json_text import json_text
from forwarder.stats import InputStats

# A parked tenant or content type is tried again after this long (the supervisor's pace for a parked input).
PARK_SECONDS = 1800.0
# Microsoft asks for 15 minutes between two starts of one subscription.
SUBSCRIPTION_START_INTERVAL = 900.0
# Records of a blob handed to the pipeline together, each with its cursor (a blob can hold many thousands).
CHUNK_RECORDS = 1000

# `client.publish_raw`: (builder, context, payloads, cursor) -> False when stopping.
PublishRaw = Callable[[Builder, Any, list[Any], list[dict[str, Any] | None]], bool]
Commit = Callable[[dict[str, Any]], None]


class PollerStats:
    """The input's /stats entry, written by all its pollers (each on its own thread)."""

    def __init__(self, stats: InputStats) -> None:
        self._stats = stats
        self._lock = threading.Lock()

    def count(self, name: str, amount: int = 1) -> None:
        with self._lock:
            self._stats.extra[name] = self._stats.extra.get(name, 0) + amount

    def record_error(self, message: str) -> None:
        with self._lock:
            self._stats.error(message)

    def source_state(self, source: str, state: str, listed_until: float, http: dict[str, Any]) -> None:
        with self._lock:
            sources = self._stats.extra.setdefault("sources", {})
            sources[source] = {"state": state, "listed_until": _iso(listed_until), **http}


class TenantSession:
    """What the pollers of one tenant share: token, request budget, clock correction and parking."""

    def __init__(self, config: O365Config, tenant_id: str, log: logging.Logger | logging.LoggerAdapter,
                 input_id: str) -> None:
        self.tenant_id = tenant_id
        self.tokens = shared_clients.token_provider(
            shared_clients.O365_MANAGEMENT, config.authentication_endpoint, tenant_id, config.application_id,
            credential(config), config.scope, config.ca_bundle, config.proxy_url)
        self.pacer = shared_clients.request_pacer(shared_clients.O365_MANAGEMENT, config.authentication_endpoint,
                                                  tenant_id, config.application_id,
                                                  [(config.max_requests_per_minute, 60.0)])
        self.clock_offset = 0.0
        self.parked_until = 0.0
        self.parked_reason = ""
        self._lock = threading.Lock()
        self._log = log
        self._input_id = input_id

    def now(self) -> float:
        """The API's time as far as we know it (our clock plus the skew its Date header showed)."""
        return time.time() + self.clock_offset

    def park(self, reason: str) -> bool:
        """Parks every poller of the tenant; True for the call that parked it (the one that logs)."""
        with self._lock:
            if self.parked_until > time.monotonic():
                return False
            self.parked_until = time.monotonic() + PARK_SECONDS
            self.parked_reason = reason
        self._log.error("%s: tenant %s parked for %.0f min: %s", self._input_id, self.tenant_id,
                        PARK_SECONDS / 60, reason)
        return True

    def parked_for(self) -> float:
        return max(0.0, self.parked_until - time.monotonic())


class SourcePoller:
    """Lists and delivers one content type of one tenant; `run` is its thread."""

    def __init__(self, config: O365Config, tenant: TenantSession, content_type: str, cursor: O365Cursor, *,
                 publish: PublishRaw, commit: Commit, builds_elsewhere: Callable[[], bool], halt: threading.Event,
                 stats: PollerStats, http_settings: HttpSettings, log: logging.Logger | logging.LoggerAdapter,
                 input_id: str) -> None:
        self.config = config
        self.tenant = tenant
        self.content_type = content_type
        self.source = source_name(tenant.tenant_id, content_type)
        self.cursor = cursor
        self.parked_reason = ""
        self._parked_until = 0.0
        self._last_start = -SUBSCRIPTION_START_INTERVAL
        self._planner = ListWindowPlanner(self.config.max_retention, self.config.max_query_size, tenant.now)
        self._publish = publish
        self._builds_elsewhere = builds_elsewhere
        self._commit = commit
        self._halt = halt
        self._stats = stats
        http = HttpClient(http_settings, token_provider=tenant.tokens, pacer=tenant.pacer, stop=halt, logger=log)
        self.api = ManagementClient(http, self.config.resource, tenant.tenant_id, self.config.application_id)
        self._log = log
        self._label = f"{input_id}: {tenant.tenant_id} {content_type}"

    @property
    def parked(self) -> bool:
        return self._parked_until > time.monotonic() or self.tenant.parked_for() > 0

    def run(self) -> None:
        halt = self._halt
        try:
            while not halt.is_set():
                if self.parked:
                    halt.wait(max(self._parked_until - time.monotonic(), self.tenant.parked_for()))
                    continue
                self._poll_safely()
        finally:
            self.api.http.close()

    def _poll_safely(self) -> None:
        try:
            self._poll()
            return
        except StopRequested:
            return
        except CredentialError as error:
            problem = ManagementApiError(error.message, error.code, ErrorKind.PERMANENT, tenant_wide=True)
            if not error.permanent:
                problem.kind = ErrorKind.TRANSIENT
        except ManagementApiError as error:
            problem = error
        except Exception as error:  # a bug must not end the poller for good: log once, retry like a server error
            problem = ManagementApiError(f"unexpected {type(error).__name__}: {error}", "internal",
                                         ErrorKind.TRANSIENT)
        self._stats.record_error(problem.message)
        if problem.kind is ErrorKind.PERMANENT and problem.tenant_wide:
            self.tenant.park(problem.message)
        elif problem.kind is ErrorKind.PERMANENT:
            self._parked_until = time.monotonic() + PARK_SECONDS
            self.parked_reason = problem.message
            self._log.error("%s: parked for %.0f min: %s", self._label, PARK_SECONDS / 60, problem.message)
        else:
            self._log.warning("%s: %s; retrying in %.1f s", self._label, problem.message,
                              self.config.error_retry_interval)
            self._halt.wait(self.config.error_retry_interval)

    def _poll(self) -> None:
        self._ensure_subscription()
        if self.cursor.blob is not None:
            progress = self.cursor.blob
            if self.cursor.is_delivered(progress.content_id):
                self.cursor.blob = None
            elif not self._deliver(progress.blob(self.content_type), progress.next_record):
                return
        while not self._halt.is_set():
            window = self._planner.next_window(self.cursor)
            if window.lost_since is not None:
                self._log.warning("%s: content created from %s to %s is past api.max_retention and can no longer "
                                  "be listed: its records may be lost", self._label, _iso(window.lost_since),
                                  _iso(window.start))
                self._stats.count("retention_gaps")
            outcome = self._list(window)
            if outcome is None:
                continue
            if not outcome:
                return
            self.cursor = self._planner.completed(self.cursor, window)
            self._commit({self.source: self.cursor.to_json()})
            self._stats.source_state(self.source, "live" if window.live else "backfill", window.end,
                                    self.api.http.stats.snapshot())
            if window.live:
                self._halt.wait(self.config.poll_interval)

    def _list(self, window: ListWindow) -> bool | None:
        """Delivers every new blob of the window; False when the forwarder is stopping, None when the
        window must be planned again because the API's clock turned out to differ from ours."""
        while True:
            try:
                for page in self.api.content_pages(self.content_type, window.start, window.end):
                    for blob in sorted(page, key=lambda b: (b.created, b.content_id)):
                        if self._halt.is_set():
                            return False
                        if not self.cursor.is_delivered(blob.content_id) and not self._deliver(blob, 0):
                            return False
                return True
            except ManagementApiError as error:
                if error.kind is ErrorKind.BAD_WINDOW and self._adjust_clock():
                    return None
                if error.kind is not ErrorKind.NO_SUBSCRIPTION:
                    raise
                self._start_subscription(error.message)

    def _deliver(self, blob: ContentBlob, first: int) -> bool:
        try:
            records = self.api.fetch(blob)
        except ManagementApiError as error:
            if error.kind is not ErrorKind.CONTENT_GONE:
                raise
            self._log.warning("%s: content %s (created %s) is no longer available, its records are lost: %s",
                              self._label, blob.content_id, _iso(blob.created), error.message)
            self._stats.count("content_expired" if error.code == "AF20051" else "content_missing")
            self.cursor.finished(blob)
            self._commit({self.source: self.cursor.to_json()})
            return True
        context = (self.tenant.tenant_id, self.config.set_id_from_audit_record)
        elsewhere = self._builds_elsewhere()
        # Each record's cursor is this blob position with the `next` record after it (the blob's last record's:
        # the blob delivered), so a restart resumes after the last acknowledged record.
        self.cursor.publishing(blob, first)
        position = self.cursor.to_json()
        progress = position["blob"]
        done = dataclasses.replace(self.cursor)
        done.finished(blob)
        start = first
        try:
            for start in range(first, len(records), CHUNK_RECORDS):
                stop = min(start + CHUNK_RECORDS, len(records))
                cursors: list[dict[str, Any] | None] = [{self.source: {**position, "blob": {**progress, "next": after}}}
                                                        for after in range(start + 1, stop + 1)]
                if stop == len(records):
                    cursors[-1] = {self.source: done.to_json()}
                payloads = [record_payload(record, elsewhere) for record in records[start:stop]]
                if not self._publish(build_record_event, context, payloads, cursors):
                    self._halt.set()
                    return False
        except BaseException:
            self.cursor.publishing(blob, start)  # a retry resumes at the chunk that was not published
            raise
        self.cursor.finished(blob)
        if first >= len(records):
            self._commit({self.source: self.cursor.to_json()})
        self._stats.count("content_delivered")
        return True

    def _ensure_subscription(self) -> None:
        status = self.api.subscriptions().get(self.content_type)
        if status != "enabled":
            self._start_subscription(f"the {self.content_type} subscription is {status or 'missing'}")

    def _start_subscription(self, reason: str) -> None:
        if time.monotonic() - self._last_start < SUBSCRIPTION_START_INTERVAL:
            raise ManagementApiError(f"{reason}, and it was started less than 15 minutes ago", "AF20022",
                                     ErrorKind.TRANSIENT)
        self._last_start = time.monotonic()
        self._log.info("%s: %s: starting the subscription", self._label, reason)
        status = self.api.start_subscription(self.content_type)
        if status != "enabled":
            raise ManagementApiError(f"starting the {self.content_type} subscription left it {status or 'unknown'}",
                                     "subscription", ErrorKind.PERMANENT)
        self._stats.count("subscriptions_started")

    def _adjust_clock(self) -> bool:
        """After a window the API refused: True when its clock differs from ours enough to explain it."""
        skew = self.api.server_clock_skew()
        config = self.config
        if not config.adjust_clock or skew is None:
            return False
        if abs(skew - self.tenant.clock_offset) < max(config.adjust_clock_min_difference, 1.0):
            return False
        self.tenant.clock_offset = skew
        if config.adjust_clock_warn:
            self._log.warning("%s: the Management API's clock differs from this host's by %+.0f s: listing windows "
                              "follow the API's clock (fix this host's time sync)", self._label, skew)
        self._stats.count("clock_adjustments")
        return True


def build_record_event(context: tuple[str, bool], carried: Any, stats: InputStats) -> Event:
    """`publish_raw`'s builder for one audit record: context (tenant id, set_id_from_audit_record), the record
    or its JSON as payload (graph_payloads)."""
    tenant_id, set_id = context
    record, raw = payload_record(carried)
    return record_event(record, tenant_id, set_id, raw=raw)


def record_event(record: Any, tenant_id: str, set_id: bool, clock: Callable[[], float] = time.time,
                 raw: str | None = None) -> Event:
    """The event the input emits for one audit record: the raw JSON in `message`, its `CreationTime` (or now)
    and id, the record itself for the `o365_ecs` processor that maps it, and the tenant it was read from as
    `record_kind` (the processor names the tenant from it). Anything not an object stays a parse failure.
    `raw` is the record's JSON text when the caller has it already."""
    if raw is None:
        raw = json_text(record)
    fields: dict[str, Any] = {"message": raw}
    if not isinstance(record, dict):
        fields["error"] = {"message": "the audit record is not a JSON object"}
        fields["tags"] = ["_parse_failure"]
        return Event(fields, clock(), {})
    timestamp = _creation_time(record.get("CreationTime"))
    if timestamp is None:
        timestamp = clock()
        fields["error"] = {"message": "the audit record has no readable CreationTime"}
    meta = {"_id": str(record["Id"])} if set_id and record.get("Id") else {}
    return Event(fields, timestamp, meta, record=record, record_kind=tenant_id)


def credential(config: O365Config) -> ClientCredential:
    return ClientCredential.from_settings(config.client_secret, config.certificate, config.key, config.key_passphrase)


def _creation_time(value: Any) -> float | None:
    if type(value) is str:
        return _creation_time_text(value)
    try:
        return parse_timestamp(value)
    except (TypeError, ValueError):
        return None


@lru_cache(maxsize=1024)
def _creation_time_text(value: str) -> float | None:
    """Cached: `CreationTime` has whole seconds, so neighbouring records of a busy tenant share it."""
    try:
        return parse_timestamp(value)
    except ValueError:
        return None


def _iso(epoch: float) -> str:
    return datetime.datetime.fromtimestamp(epoch, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
