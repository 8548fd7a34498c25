"""The `o365audit` input: Office 365 audit records from the Management Activity API, each blob delivered once.

One poller thread per tenant × content type, as in Filebeat, so a slow or
refused content type never holds back another (forwarder/inputs/o365_poller.py).
The pollers of one tenant share its token, its request budget
(`max_requests_per_minute`) and its fate: a credential, tenant or permission
error parks the whole tenant with one log line, while other tenants keep
running. Only when every poller is parked does the input itself give up and let
the supervisor retry later.

The input emits each record raw (`o365_poller.build_record_event` builds its
event, in a worker process with `forwarder.workers`); the `o365_ecs` processor maps it onto ECS,
run by the `o365` module or, for an input configured on its own, named by
`standalone_processors` from the input's `normalize` and
`api.preserve_original_event` settings.
"""

from __future__ import annotations

import dataclasses
import functools
import threading
from typing import Any

from forwarder.inputs.base import InputContext, InputType, PermanentInputError
from forwarder.inputs.graph_payloads import builds_elsewhere
from forwarder.inputs.o365_config import O365Config, default_id, parse_config, source_name
from forwarder.inputs.o365_cursor import O365Cursor
from forwarder.inputs.o365_poller import PollerStats, SourcePoller, TenantSession
from forwarder.net.http_client import HttpSettings
from forwarder.net.tokens import CredentialError

MONITOR_INTERVAL = 0.2


class O365Input:
    def __init__(self, config: O365Config, context: InputContext, http_settings: HttpSettings | None = None) -> None:
        self.config = config
        self.context = context
        self.halt = threading.Event()
        self.http_settings = dataclasses.replace(
            http_settings or HttpSettings(), ca_bundle=config.ca_bundle, proxy_url=config.proxy_url,
            user_agent="forwarder-o365audit")
        self.stats = PollerStats(context.stats)

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

    def _pollers(self) -> list[SourcePoller]:
        context = self.context
        committed = context.client.committed()
        pollers = []
        for tenant_id in self.config.tenant_ids:
            tenant = TenantSession(self.config, tenant_id, context.log, context.input_id)
            for content_type in self.config.content_types:
                source = source_name(tenant_id, content_type)
                pollers.append(SourcePoller(
                    self.config, tenant, content_type, self._cursor(source, committed.get(source)),
                    publish=context.client.publish_raw, commit=context.client.commit,
                    builds_elsewhere=functools.partial(builds_elsewhere, context.client), halt=self.halt,
                    stats=self.stats, http_settings=self.http_settings, log=context.log, input_id=context.input_id))
        return pollers

    def _cursor(self, source: str, value: Any) -> O365Cursor:
        if value is None:
            return O365Cursor()
        try:
            return O365Cursor.from_json(value)
        except ValueError as error:
            self.context.log.warning("%s: the stored cursor of %s is unreadable (%s): listing the whole retention "
                                     "period again", self.context.input_id, source, error)
            return O365Cursor()


def create(config: O365Config, context: InputContext) -> O365Input:
    return O365Input(config, context)


def standalone_processors(config: O365Config) -> list[dict[str, Any]]:
    """Without the module, the same `o365_ecs` processor maps the records, from the input's own settings."""
    if not (config.normalize or config.preserve_original_event):
        return []
    return [{"o365_ecs": {
        "normalize": config.normalize,
        "preserve_original_event": config.preserve_original_event,
        "tenant_names": dict(config.tenant_names),
    }}]


INPUT_TYPE = InputType("o365audit", parse_config, create, default_id, standalone_processors)
