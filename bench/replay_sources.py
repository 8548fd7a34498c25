"""The recorded fixture sets of bench/replay_identical.py and the fakes that serve them to a forwarder.

Each set starts its fakes (from tests/fakes, in the replaying process) for one forwarder run and
writes the configuration of one of the two shipped ways to read it: the module (`modules.d/*.yml`)
or the input on its own in `forwarder.inputs`. The records are the same for every run of a replay:
times the fakes filter on are re-dated from one base time the replay passes to every run, and the
Event Hubs fake's enqueue clock is pinned to that base time, so nothing in an event depends on when
a run happened.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
import types
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import orjson
import trustme

from tests.fakes import eventhubs_partitions
from tests.fakes.eventhubs_amqp import FakeEventHubs
from tests.fakes.graph_api import ENDPOINTS, FakeGraphApi
from tests.fakes.https_server import FakeHttpsServer
from tests.fakes.identity_platform import FakeIdentityPlatform
from tests.fakes.management_api import FakeManagementApi

FIXTURES = Path(__file__).resolve().parents[1] / "tests" / "fixtures"
TENANT = "5d7f9b1c-3e5a-4c7e-9b1d-3f5a7c9e1b43"
CLIENT = "1c3e5a7c-9e1b-4d3f-8a5c-7e9a1c3e5b54"
SECRET = "replay~Client.Secret-value"
HUB = "insights-logs-replay"
PARTITIONS = 2
_CA = trustme.CA()
_PINNED_CLOCK = threading.Lock()

# Graph fixture file name prefix -> the endpoint that lists it.
GRAPH_ENDPOINTS = {
    "signin_": "auditLogs/signIns",
    "audit_": "auditLogs/directoryAudits",
    "provisioning_": "auditLogs/provisioning",
    "risk_detection_": "identityProtection/riskDetections",
    "risky_user": "identityProtection/riskyUsers",
    "alert_": "security/alerts_v2",
    "incident": "security/incidents",
}
GRAPH_RECORD_TYPES = ["signinlogs", "auditlogs", "provisioning", "risk_detection", "risky_user", "alert", "incident"]
ENTRAID_FILESETS = ("signinlogs", "auditlogs", "provisioning", "identity_protection", "alerts", "incidents")
# O365 fixture file name prefix -> the content type whose blob carries it.
O365_CONTENT_TYPES = {
    "aad_": "Audit.AzureActiveDirectory",
    "exchange_": "Audit.Exchange",
    "sharepoint_": "Audit.SharePoint",
    "dlp_": "DLP.All",
    "security_alert": "Audit.General",
    "teams_": "Audit.General",
}
AZURE_FILESETS = ("activitylogs", "platformlogs", "auditlogs", "signinlogs", "identity_protection", "provisioning",
                  "graphactivitylogs")


def _by_prefix(path: Path, table: dict[str, str]) -> str | None:
    return next((value for prefix, value in table.items() if path.name.startswith(prefix)), None)


def graph_time(epoch: int, recorded: str) -> str:
    """`epoch` in Graph's form, keeping the recorded fraction of a second (Graph writes 0 to 7 digits)."""
    fraction = recorded[19:-1] if recorded.endswith("Z") else ""
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(epoch)) + fraction + "Z"


@contextlib.contextmanager
def pinned_enqueue_clock(epoch: float) -> Iterator[None]:
    """The Event Hubs fake stamps each sent event with time.time(); while sending, that clock reads `epoch`."""
    with _PINNED_CLOCK:
        real = eventhubs_partitions.time
        eventhubs_partitions.time = types.SimpleNamespace(time=lambda: epoch)
        try:
            yield
        finally:
            eventhubs_partitions.time = real


class EntraIdGraph:
    """tests/fixtures/entraid (the Graph records) through the fake identity platform and Graph."""

    name = "entraid"
    module = "entraid"

    def __init__(self) -> None:
        self.records = [(endpoint, json.loads(path.read_text()))
                        for path in sorted((FIXTURES / "entraid").glob("*.json"))
                        if (endpoint := _by_prefix(path, GRAPH_ENDPOINTS)) is not None]
        self.expected = len(self.records)

    def serve(self, stack: ExitStack, base_time: int) -> dict[str, str]:
        server = stack.enter_context(FakeHttpsServer(_CA))
        identity = FakeIdentityPlatform(server)
        identity.register_app(TENANT, CLIENT, secret=SECRET)
        graph = FakeGraphApi(server, identity)
        graph.add_app_secret(CLIENT, SECRET, end=base_time + 365 * 86400)
        for number, (endpoint, record) in enumerate(self.records):
            field = ENDPOINTS[endpoint].time_field
            graph.add(endpoint, {**record, field: graph_time(base_time - 60 * (number + 1), record[field])})
        return {"url": server.url, "ca": server.ca_path}

    def _common(self, served: dict[str, str], normalize: bool) -> dict[str, Any]:
        return {
            "tenant_id": TENANT, "client_id": CLIENT, "client_secret": SECRET,
            "api": {"login_endpoint": served["url"], "graph_endpoint": served["url"]},
            "ssl": {"certificate_authorities": [served["ca"]]},
            "initial_lookback": "2h", "requests_per_10s": 100000, "poll_interval": "1s",
            "normalize": normalize, "preserve_original_event": True,
        }

    def module_entry(self, served: dict[str, str], normalize: bool) -> dict[str, Any]:
        return {"module": "entraid", "var": self._common(served, normalize),
                **{fileset: {"enabled": True} for fileset in ENTRAID_FILESETS}}

    def standalone_input(self, served: dict[str, str], normalize: bool) -> dict[str, Any]:
        return {"type": "graph", "id": "graph-replay", "record_types": GRAPH_RECORD_TYPES,
                **self._common(served, normalize)}


class O365Audit:
    """tests/fixtures/o365 through the fake identity platform and Management Activity API, one blob per type."""

    name = "o365"
    module = "o365"

    def __init__(self) -> None:
        self.blobs: dict[str, list[dict[str, Any]]] = {}
        for path in sorted((FIXTURES / "o365").glob("*.json")):
            content_type = _by_prefix(path, O365_CONTENT_TYPES)
            if content_type is None:
                raise SystemExit(f"{path}: no content type known for this fixture; add its prefix to "
                                 "O365_CONTENT_TYPES in bench/replay_sources.py")
            self.blobs.setdefault(content_type, []).append(json.loads(path.read_text()))
        self.expected = sum(len(records) for records in self.blobs.values())

    def serve(self, stack: ExitStack, base_time: int) -> dict[str, str]:
        server = stack.enter_context(FakeHttpsServer(_CA))
        identity = FakeIdentityPlatform(server)
        identity.register_app(TENANT, CLIENT, secret=SECRET)
        api = FakeManagementApi(server, identity)
        api.add_tenant(TENANT)
        for number, (content_type, records) in enumerate(sorted(self.blobs.items())):
            created = base_time - 600 + number
            api.add_blob(TENANT, content_type, records, created=created,
                         content_id=f"{created}{number:06d}${content_type}$blob")
        return {"url": server.url, "ca": server.ca_path}

    def _api(self, served: dict[str, str]) -> dict[str, Any]:
        return {"authentication_endpoint": served["url"], "resource": served["url"], "max_retention": "2h",
                "max_requests_per_minute": 100000, "preserve_original_event": True}

    def module_entry(self, served: dict[str, str], normalize: bool) -> dict[str, Any]:
        return {"module": "o365", "audit": {"enabled": True, "var": {
            "application_id": CLIENT, "client_secret": SECRET,
            "tenants": [{"id": TENANT, "name": "contoso.onmicrosoft.com"}],
            "api": self._api(served), "ssl": {"certificate_authorities": [served["ca"]]}, "normalize": normalize,
        }}}

    def standalone_input(self, served: dict[str, str], normalize: bool) -> dict[str, Any]:
        return {"type": "o365audit", "id": "o365-replay", "application_id": CLIENT, "client_secret": SECRET,
                "tenant_id": TENANT, "tenant_names": {TENANT: "contoso.onmicrosoft.com"}, "api": self._api(served),
                "ssl": {"certificate_authorities": [served["ca"]]}, "normalize": normalize}


class AzureEventHub:
    """tests/fixtures/azure and the Event Hubs exports of tests/fixtures/entraid, one message per file."""

    name = "azure"
    module = "azure"

    def __init__(self) -> None:
        paths = sorted((FIXTURES / "azure").glob("*.json")) + sorted((FIXTURES / "entraid").glob("eventhub_*.json"))
        self.bodies = [path.read_bytes() for path in paths]
        self.expected = sum(len(orjson.loads(body)["records"]) for body in self.bodies)

    def serve(self, stack: ExitStack, base_time: int) -> dict[str, str]:
        hub = stack.enter_context(FakeEventHubs(hub=HUB, partitions=PARTITIONS))
        with pinned_enqueue_clock(base_time):
            for number, body in enumerate(self.bodies):
                hub.send(str(number % PARTITIONS), body)
        return {"connection_string": hub.connection_string}

    def module_entry(self, served: dict[str, str], normalize: bool) -> dict[str, Any]:
        # Every fileset reads the one hub, so they share one consumer and each record goes to its category's.
        fast = {"partition_receive_timeout": "200ms"}
        return {"module": "azure", "var": {"connection_string": served["connection_string"], "eventhub": HUB,
                                           "normalize": normalize, "preserve_original_event": True},
                **{fileset: {"enabled": True, "input": fast} for fileset in AZURE_FILESETS}}

    def standalone_input(self, served: dict[str, str], normalize: bool) -> dict[str, Any]:
        return {"type": "azure-eventhub", "id": "azure-replay", "eventhub": HUB,
                "connection_string": served["connection_string"], "partition_receive_timeout": "200ms",
                "normalize": normalize, "preserve_original_event": True}


SOURCES = (EntraIdGraph(), O365Audit(), AzureEventHub())
