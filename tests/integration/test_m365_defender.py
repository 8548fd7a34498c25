"""The microsoft module's m365_defender fileset through the real process, against the fake Graph.

Alone it reads Defender XDR alerts and incidents with the entraid mapping under
its own datasets; enabled with entraid's alerts fileset for the same app, the
alerts are polled once per interval by one poller, not twice.
"""

from __future__ import annotations

import re
import time
from itertools import pairwise
from pathlib import Path

import trustme

from forwarder.net.graph_client import graph_time
from tests.fakes.graph_api import FakeGraphApi
from tests.fakes.https_server import FakeHttpsServer, Reply, Request
from tests.fakes.identity_platform import FakeIdentityPlatform
from tests.integration.forwarder_process import ForwarderProcess, output_events, wait_until

TENANT = "3c5e7a9c-1e3a-4c5e-8a7c-9e1b3d5f7a92"
CLIENT = "7a9c1e3a-5c7e-4a9c-8e1a-3c5e7a9c1e48"
SECRET = "m365~Defender.Secret-Never_Logged"
MAIN_CONFIG = """
    output.file:
      path: ${path.data}/events
    logging.metrics.enabled: false
    """
POLL_INTERVAL = 1.0


class TimedGraph(FakeGraphApi):
    """The fake Graph, also noting when each log request arrived: (path, monotonic seconds)."""

    def __init__(self, server: FakeHttpsServer, identity: FakeIdentityPlatform) -> None:
        self.arrivals: list[tuple[str, float]] = []
        super().__init__(server, identity)

    def _list(self, request: Request, match: re.Match[str]) -> Reply:
        self.arrivals.append((request.path, time.monotonic()))
        return super()._list(request, match)

    def times(self, path: str) -> list[float]:
        return [when for arrived, when in list(self.arrivals) if arrived == path]


def alert(number: int, now: float) -> dict:
    return {
        "id": f"da-{number}", "incidentId": "7", "status": "new", "severity": "high", "title": f"Alert {number}",
        "serviceSource": "microsoftDefenderForEndpoint", "createdDateTime": graph_time(now - 900),
        "lastUpdateDateTime": graph_time(now - 600 - number),
        "evidence": [{"@odata.type": "#microsoft.graph.security.ipEvidence", "ipAddress": "198.51.100.23"}],
    }


def incident(now: float) -> dict:
    return {"id": "7", "displayName": "Multi-stage incident", "status": "active", "severity": "high",
            "createdDateTime": graph_time(now - 900), "lastUpdateDateTime": graph_time(now - 500),
            "alerts": [{"id": "da-0"}, {"id": "da-1"}]}


def module_files(home: Path, server: FakeHttpsServer, files: dict[str, str]) -> None:
    connection = f"""
  var.tenant_id: "{TENANT}"
  var.client_id: "{CLIENT}"
  var.client_secret: "{SECRET}"
  var.api.login_endpoint: "{server.url}"
  var.api.graph_endpoint: "{server.url}"
  var.ssl.certificate_authorities: ["{server.ca_path}"]
  var.initial_lookback: 30m"""
    (home / "modules.d").mkdir(parents=True)
    for name, body in files.items():
        path = home / "modules.d" / f"{name}.yml"
        path.write_text(body.replace("CONNECTION", connection))
        path.chmod(0o600)


def test_m365_defender_reads_alerts_and_expanded_incidents_with_the_entraid_mapping(tmp_path: Path) -> None:
    with FakeHttpsServer(trustme.CA()) as server:
        identity = FakeIdentityPlatform(server)
        identity.register_app(TENANT, CLIENT, secret=SECRET)
        graph = FakeGraphApi(server, identity)
        now = time.time()
        for number in range(3):
            graph.add("security/alerts_v2", alert(number, now))
        graph.add("security/incidents", incident(now))
        home = tmp_path / "home"
        module_files(home, server, {"microsoft": """
- module: microsoft
  m365_defender:
    enabled: trueCONNECTION
"""})
        forwarder = ForwarderProcess(home, MAIN_CONFIG)
        try:
            forwarder.start()
            wait_until(lambda: len(output_events(home)) >= 4, 60, "three alerts and an incident")
            assert forwarder.terminate() == 0
        finally:
            forwarder.stop()
        assert server.handler_errors == []
    events = output_events(home)
    alerts = sorted((e for e in events if e["event"]["dataset"] == "m365_defender.alert"), key=lambda e: e["message"])
    incidents = [e for e in events if e["event"]["dataset"] == "m365_defender.incident"]
    assert len(alerts) == 3 and len(incidents) == 1 and len(events) == 4
    first = alerts[0]
    assert first["event"]["module"] == "microsoft" and first["fileset"]["name"] == "m365_defender"
    assert first["service"]["type"] == "microsoft"
    assert first["tags"] == ["m365-defender", "forwarded"] and "host" not in first
    # entraid's alert mapping, unchanged
    assert first["azure"]["entraid"]["alert"]["id"] == "da-0"
    assert first["source"]["ip"] == "198.51.100.23"
    assert first["@metadata"]["_id"].startswith("da-0|")
    # the incident was asked for with its alerts ($expand=alerts): their ids are mapped
    assert incidents[0]["azure"]["entraid"]["incident"]["alert_ids"] == ["da-0", "da-1"]
    assert all(query.get("$expand") == "alerts" for query in graph.requests_to("security/incidents"))
    assert SECRET not in forwarder.log_path.read_text()


def test_entraid_alerts_and_m365_defender_together_poll_alerts_once_per_interval(tmp_path: Path) -> None:
    with FakeHttpsServer(trustme.CA()) as server:
        identity = FakeIdentityPlatform(server)
        identity.register_app(TENANT, CLIENT, secret=SECRET)
        graph = TimedGraph(server, identity)
        now = time.time()
        for number in range(3):
            graph.add("security/alerts_v2", alert(number, now))
        home = tmp_path / "home"
        module_files(home, server, {
            "entraid": f"""
- module: entraid
  var.poll_interval: {POLL_INTERVAL}sCONNECTION
  alerts:
    enabled: true
""",
            "microsoft": f"""
- module: microsoft
  m365_defender:
    var.streams: [alert]
    var.interval: {POLL_INTERVAL}sCONNECTION
""",
        })
        forwarder = ForwarderProcess(home, MAIN_CONFIG)
        try:
            forwarder.start()
            wait_until(lambda: len(graph.times("/v1.0/security/alerts_v2")) >= 4, 60, "four polls of the alerts")
            assert forwarder.terminate() == 0
        finally:
            forwarder.stop()
        assert server.handler_errors == []
    # one poller: consecutive polls are an interval apart (two pollers would poll in pairs)
    polls = graph.times("/v1.0/security/alerts_v2")
    gaps = [later - earlier for earlier, later in pairwise(polls)]
    assert min(gaps) >= POLL_INTERVAL - 0.2, gaps
    # each alert forwarded once, under the more specific dataset, by the kept input
    events = output_events(home)
    assert sorted(e["azure"]["entraid"]["alert"]["id"] for e in events) == ["da-0", "da-1", "da-2"]
    assert {e["event"]["dataset"] for e in events} == {"m365_defender.alert"}
    message = " ".join(line.get("message", "") for line in forwarder.log_lines() if "poll the same" in
                       line.get("message", ""))
    assert "entraid-alerts (entraid.alerts)" in message and "by microsoft-m365_defender-alert" in message
    registry_text = "".join(path.read_text() for path in (home / "data" / "registry").rglob("*") if path.is_file())
    assert "microsoft-m365_defender-alert" in registry_text and "entraid-alerts" not in registry_text
