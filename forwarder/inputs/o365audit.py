"""The `o365audit` input: Office 365 audit records from the Management Activity API, each blob delivered once.

One poller thread per tenant × content type, as in Filebeat, so a slow or
refused content type never holds back another. The pollers of one tenant share
its token, its request budget (`max_requests_per_minute`) and its fate: a
credential, tenant or permission error parks the whole tenant with one log
line, while other tenants keep running. Only when every poller is parked does
the input itself give up and let the supervisor retry later.

A poller lists windows of content (forwarder/inputs/o365_cursor.py plans them)
and publishes every record of every blob not yet delivered with a cursor naming
the blob and the record, so a restart resumes inside the blob it was reading.
"""

from __future__ import annotations

import dataclasses
import datetime
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import orjson

from forwarder.inputs.base import InputContext, InputType, PermanentInputError
from forwarder.inputs.o365_config import O365Config, default_id, parse_config, source_name
from forwarder.inputs.o365_cursor import ListWindow, ListWindowPlanner, O365Cursor
from forwarder.modules.o365_ecs import normalize
from forwarder.net.http_client import HttpClient, HttpSettings, StopRequested
from forwarder.net.management_client import ContentBlob, ErrorKind, ManagementApiError, ManagementClient
from forwarder.net.request_pacer import RequestPacer
from forwarder.net.tokens import ClientCredential, CredentialError, TokenProvider
from forwarder.pipeline.event import Event, parse_timestamp

# A parked tenant or content type is tried again after this long (the supervisor's pace for a parked input).
PARK_SECONDS = 1800.0
# Microsoft asks for 15 minutes between two starts of one subscription.
SUBSCRIPTION_START_INTERVAL = 900.0
MONITOR_INTERVAL = 0.2


class TenantSession:
    """What the pollers of one tenant share: token, request budget, clock correction and parking."""

    def __init__(self, config: O365Config, tenant_id: str, log: logging.Logger | logging.LoggerAdapter,
                 input_id: str) -> None:
        self.tenant_id = tenant_id
        self.name = config.tenant_names.get(tenant_id)
        self.tokens = TokenProvider(config.authentication_endpoint, tenant_id, config.application_id,
                                    credential(config), config.scope, config.ca_bundle, config.proxy_url)
        self.pacer = RequestPacer(config.max_requests_per_minute, 60.0)
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

    def __init__(self, owner: O365Input, tenant: TenantSession, content_type: str, cursor: O365Cursor) -> None:
        self.owner = owner
        self.config = owner.config
        self.tenant = tenant
        self.content_type = content_type
        self.source = source_name(tenant.tenant_id, content_type)
        self.cursor = cursor
        self.parked_reason = ""
        self._parked_until = 0.0
        self._last_start = -SUBSCRIPTION_START_INTERVAL
        self._planner = ListWindowPlanner(self.config.max_retention, self.config.max_query_size, tenant.now)
        http = HttpClient(owner.http_settings, token_provider=tenant.tokens, pacer=tenant.pacer, stop=owner.halt,
                          logger=owner.log)
        self.api = ManagementClient(http, self.config.resource, tenant.tenant_id, self.config.application_id)
        self._log = owner.log
        self._label = f"{owner.context.input_id}: {tenant.tenant_id} {content_type}"

    @property
    def parked(self) -> bool:
        return self._parked_until > time.monotonic() or self.tenant.parked_for() > 0

    def run(self) -> None:
        halt = self.owner.halt
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
        self.owner.record_error(problem.message)
        if problem.kind is ErrorKind.PERMANENT and problem.tenant_wide:
            self.tenant.park(problem.message)
        elif problem.kind is ErrorKind.PERMANENT:
            self._parked_until = time.monotonic() + PARK_SECONDS
            self.parked_reason = problem.message
            self._log.error("%s: parked for %.0f min: %s", self._label, PARK_SECONDS / 60, problem.message)
        else:
            self._log.warning("%s: %s; retrying in %.1f s", self._label, problem.message,
                              self.config.error_retry_interval)
            self.owner.halt.wait(self.config.error_retry_interval)

    def _poll(self) -> None:
        self._ensure_subscription()
        if self.cursor.blob is not None:
            progress = self.cursor.blob
            if self.cursor.is_delivered(progress.content_id):
                self.cursor.blob = None
            elif not self._deliver(progress.blob(self.content_type), progress.next_record):
                return
        while not self.owner.halt.is_set():
            window = self._planner.next_window(self.cursor)
            if window.lost_since is not None:
                self._log.warning("%s: content created from %s to %s is past api.max_retention and can no longer "
                                  "be listed: its records may be lost", self._label, _iso(window.lost_since),
                                  _iso(window.start))
                self.owner.count("retention_gaps")
            outcome = self._list(window)
            if outcome is None:
                continue
            if not outcome:
                return
            self.cursor = self._planner.completed(self.cursor, window)
            self.owner.context.client.commit({self.source: self.cursor.to_json()})
            self.owner.source_state(self.source, "live" if window.live else "backfill", window.end,
                                    self.api.http.stats.snapshot())
            if window.live:
                self.owner.halt.wait(self.config.poll_interval)

    def _list(self, window: ListWindow) -> bool | None:
        """Delivers every new blob of the window; False when the forwarder is stopping, None when the
        window must be planned again because the API's clock turned out to differ from ours."""
        while True:
            try:
                for page in self.api.content_pages(self.content_type, window.start, window.end):
                    for blob in sorted(page, key=lambda b: (b.created, b.content_id)):
                        if self.owner.halt.is_set():
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
            self.owner.count("content_expired" if error.code == "AF20051" else "content_missing")
            self.cursor.finished(blob)
            self.owner.context.client.commit({self.source: self.cursor.to_json()})
            return True
        client = self.owner.context.client
        last = len(records) - 1
        # Each record's cursor is this blob position with its own `next`, built as plain dicts: at tens of
        # thousands of records a second, a BlobProgress and a to_json() per record are a measurable share.
        self.cursor.publishing(blob, first)
        position = self.cursor.to_json()
        progress = position["blob"]
        index = first
        try:
            for index in range(first, len(records)):
                event = record_event(self.config, records[index], self.tenant.name)
                if index == last:
                    self.cursor.finished(blob)
                    cursor = self.cursor.to_json()
                else:
                    cursor = {**position, "blob": {**progress, "next": index + 1}}
                if not client.publish(event, {self.source: cursor}):
                    self.owner.halt.set()
                    return False
        except BaseException:
            if index != last:  # a retry resumes at the record that was not published
                self.cursor.publishing(blob, index)
            raise
        if first > last:
            self.cursor.finished(blob)
            client.commit({self.source: self.cursor.to_json()})
        self.owner.count("content_delivered")
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
        self.owner.count("subscriptions_started")

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
        self.owner.count("clock_adjustments")
        return True


class O365Input:
    def __init__(self, config: O365Config, context: InputContext, http_settings: HttpSettings | None = None) -> None:
        self.config = config
        self.context = context
        self.log = context.log
        self.halt = threading.Event()
        self.http_settings = dataclasses.replace(
            http_settings or HttpSettings(), ca_bundle=config.ca_bundle, proxy_url=config.proxy_url,
            user_agent="forwarder-o365audit")
        self._stats_lock = threading.Lock()

    def run(self) -> None:
        try:
            pollers = self._pollers()
        except CredentialError as error:
            raise PermanentInputError(error.message) from None
        threads = [threading.Thread(target=poller.run, name=f"o365audit {poller.source}", daemon=True)
                   for poller in pollers]
        for thread in threads:
            thread.start()
        self.context.stats.state = "running"
        try:
            while not self.context.stop.wait(MONITOR_INTERVAL):
                if all(poller.parked for poller in pollers):
                    reasons = dict.fromkeys(p.parked_reason or p.tenant.parked_reason for p in pollers)
                    raise PermanentInputError("; ".join(reasons))
                if self.halt.is_set():
                    return
        finally:
            self.halt.set()
            for thread in threads:
                thread.join()

    def count(self, name: str, amount: int = 1) -> None:
        with self._stats_lock:
            self.context.stats.extra[name] = self.context.stats.extra.get(name, 0) + amount

    def record_error(self, message: str) -> None:
        with self._stats_lock:
            self.context.stats.error(message)

    def source_state(self, source: str, state: str, listed_until: float, http: dict[str, Any]) -> None:
        with self._stats_lock:
            sources = self.context.stats.extra.setdefault("sources", {})
            sources[source] = {"state": state, "listed_until": _iso(listed_until), **http}

    def _pollers(self) -> list[SourcePoller]:
        committed = self.context.client.committed()
        pollers = []
        for tenant_id in self.config.tenant_ids:
            tenant = TenantSession(self.config, tenant_id, self.log, self.context.input_id)
            for content_type in self.config.content_types:
                source = source_name(tenant_id, content_type)
                pollers.append(SourcePoller(self, tenant, content_type, self._cursor(source, committed.get(source))))
        return pollers

    def _cursor(self, source: str, value: Any) -> O365Cursor:
        if value is None:
            return O365Cursor()
        try:
            return O365Cursor.from_json(value)
        except ValueError as error:
            self.log.warning("%s: the stored cursor of %s is unreadable (%s): listing the whole retention period "
                             "again", self.context.input_id, source, error)
            return O365Cursor()


def record_event(config: O365Config, record: Any, tenant_name: str | None,
                 clock: Callable[[], float] = time.time) -> Event:
    """The event the forwarder ships for one audit record (before module fields and processors)."""
    raw = orjson.dumps(record).decode()
    fields: dict[str, Any] = {"message": raw}
    if not isinstance(record, dict):
        fields["error"] = {"message": "the audit record is not a JSON object"}
        fields["tags"] = ["_parse_failure"]
        return Event(fields, clock(), {})
    timestamp = None
    if config.normalize:
        normalized, timestamp = normalize(record, tenant_name)
        fields.update(normalized)
    if timestamp is None:
        timestamp = _creation_time(record)
    if timestamp is None:
        timestamp = clock()
        fields.setdefault("error", {})["message"] = "the audit record has no readable CreationTime"
    if config.preserve_original_event:
        fields.setdefault("event", {})["original"] = raw
    meta = {"_id": str(record["Id"])} if config.set_id_from_audit_record and record.get("Id") else {}
    return Event(fields, timestamp, meta)


def credential(config: O365Config) -> ClientCredential:
    return ClientCredential.from_settings(config.client_secret, config.certificate, config.key, config.key_passphrase)




def _creation_time(record: dict[str, Any]) -> float | None:
    try:
        return parse_timestamp(record["CreationTime"])
    except (KeyError, TypeError, ValueError):
        return None


def _iso(epoch: float) -> str:
    return datetime.datetime.fromtimestamp(epoch, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def create(config: O365Config, context: InputContext) -> O365Input:
    return O365Input(config, context)


INPUT_TYPE = InputType("o365audit", parse_config, create, default_id)
