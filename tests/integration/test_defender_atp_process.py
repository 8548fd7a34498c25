"""The microsoft module's defender_atp fileset through the real forwarder process, against the fake Defender API."""

from __future__ import annotations

import random
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import trustme

from forwarder.net.graph_client import graph_time
from tests.fakes.defender_api import FakeDefenderApi
from tests.fakes.https_server import FakeHttpsServer
from tests.fakes.identity_platform import FakeIdentityPlatform
from tests.integration.forwarder_process import ForwarderProcess, output_events, wait_until

TENANT = "4c6e8a0c-2e4a-4c6e-8a0c-2e4a6c8e0a35"
CLIENT = "8a0c2e4a-6c8e-4a0c-9e4a-6c8e0a2c4e46"
SECRET = "defender~Client.Secret-Must_Not_Leak"
MAIN_CONFIG = """
    queue.mem:
      events: 4096
      flush.min_events: 500
      flush.timeout: 50ms
    forwarder.registry.flush: 0s
    output.file:
      path: ${path.data}/events
      bulk_max_size: 500
    logging.metrics.enabled: false
    """


def alert(number: int, updated: float, **extra: Any) -> dict[str, Any]:
    """An alert shaped like the API's, with one process evidence and one file evidence."""
    return {
        "id": f"da6372910489_{number:06d}", "incidentId": 1000 + number, "investigationId": 7, "assignedTo": None,
        "severity": ("Informational", "Low", "Medium", "High")[number % 4], "status": "New",
        "classification": None, "determination": None, "detectionSource": "WindowsDefenderAtp",
        "category": "DefenseEvasion", "threatFamilyName": None, "title": f"Suspicious process injection {number}",
        "description": "A process abnormally injected code into another process",
        "alertCreationTime": graph_time(updated - 120), "firstEventTime": graph_time(updated - 300),
        "lastEventTime": graph_time(updated - 60), "lastUpdateTime": graph_time(updated), "resolvedTime": None,
        "machineId": "543bc5a9f1e2", "computerDnsName": f"host{number % 50}.contoso.example", "rbacGroupName": "",
        "aadTenantId": TENANT, "relatedUser": {"userName": "administrator1", "domainName": "CONTOSO"},
        "comments": [],
        "evidence": [
            {"entityType": "Process", "sha1": "b6d2" + "0" * 36, "fileName": "notepad.exe",
             "filePath": "C:\\Windows\\System32", "processId": 4104 + number, "processCommandLine": "\"notepad.exe\"",
             "processCreationTime": graph_time(updated - 90), "parentProcessId": 6012,
             "parentProcessCreationTime": graph_time(updated - 400), "ipAddress": None, "url": None},
            {"entityType": "File", "sha256": "a920" + "1" * 60, "fileName": "payload.dll",
             "filePath": "C:\\Temp", "ipAddress": "198.51.100.7", "url": "https://bad.example/x"},
        ],
        **extra,
    }


class DefenderSite:
    """The fake login host and Defender API, and a forwarder home whose microsoft module reads them."""

    def __init__(self, server: FakeHttpsServer, home: Path) -> None:
        self.server = server
        self.identity = FakeIdentityPlatform(server)
        self.identity.register_app(TENANT, CLIENT, secret=SECRET)
        self.api = FakeDefenderApi(server, self.identity)
        self.home = home
        self.forwarder = ForwarderProcess(home, MAIN_CONFIG)

    def write_module(self, **fileset_vars: Any) -> None:
        settings = {"page_size": 10, "interval": "1s", "initial_lookback": "24h", **fileset_vars}
        lines = "".join(f"    var.{name}: {value}\n" for name, value in settings.items())
        (self.home / "modules.d").mkdir(parents=True, exist_ok=True)
        module = self.home / "modules.d" / "microsoft.yml"
        module.write_text(f"""
- module: microsoft
  var.tenant_id: "{TENANT}"
  var.client_id: "{CLIENT}"
  var.client_secret: "{SECRET}"
  var.api_host: "127.0.0.1:{self.server.port}"
  var.api.login_endpoint: "{self.server.url}"
  var.ssl.certificate_authorities: ["{self.server.ca_path}"]
  defender_atp:
    enabled: true
{lines}""")
        module.chmod(0o600)

    def events(self) -> list[dict[str, Any]]:
        return output_events(self.home)


@pytest.fixture
def site(tmp_path: Path) -> Iterator[DefenderSite]:
    with FakeHttpsServer(trustme.CA()) as server:
        defender = DefenderSite(server, tmp_path / "home")
        try:
            yield defender
        finally:
            defender.forwarder.stop()
        assert server.handler_errors == []
    assert SECRET not in defender.forwarder.log_path.read_text()


def test_backfill_over_several_pages_maps_every_alert_once(site: DefenderSite) -> None:
    now = time.time()
    for number in range(25):
        site.api.add(alert(number, now - 3600 - number * 60))
    site.write_module()
    site.forwarder.start()
    wait_until(lambda: len(site.events()) >= 25, 60, "25 alerts")
    assert site.forwarder.terminate() == 0
    events = site.events()
    ids = Counter(event["@metadata"]["_id"] for event in events)
    assert len(events) == 25 and max(ids.values()) == 1
    first = next(event for event in events if event["event"]["id"] == "da6372910489_000002")
    assert first["@metadata"]["_id"] == f"da6372910489_000002|{graph_time(now - 3600 - 120)}"
    assert first["event"]["kind"] == "alert" and first["event"]["dataset"] == "microsoft.defender_atp"
    assert first["event"]["module"] == "microsoft" and first["event"]["severity"] == 3
    assert first["event"]["created"] == graph_time(now - 3600 - 120 - 120)
    assert first["message"] == "Suspicious process injection 2"
    assert first["host"]["hostname"] == "host2.contoso.example"
    assert first["user"] == {"name": "administrator1", "domain": "CONTOSO"}
    assert first["file"]["name"] == "notepad.exe" and first["file"]["path"] == "C:\\Windows\\System32\\notepad.exe"
    assert first["process"]["pid"] == 4106 and first["process"]["parent"]["pid"] == 6012
    assert first["url"] == {"full": "https://bad.example/x"}
    assert first["related"]["ip"] == ["198.51.100.7"]
    assert first["threat"]["technique"]["name"] == ["DefenseEvasion"]
    assert first["observer"] == {"vendor": "Microsoft", "product": "Defender ATP", "name": "WindowsDefenderAtp"}
    assert first["cloud"]["account"]["id"] == TENANT
    assert first["microsoft"]["defender_atp"]["incidentId"] == 1002
    assert len(first["microsoft"]["defender_atp"]["evidence"]) == 2
    assert "assignedTo" not in first["microsoft"]["defender_atp"]
    assert first["@timestamp"].startswith(graph_time(now - 3600 - 120)[:19])
    assert first["tags"] == ["defender-atp", "forwarded"]
    queries = site.api.queries
    assert {query["$expand"] for query in queries} == {"evidence"}
    assert all(query["$filter"].startswith("lastUpdateTime gt ") for query in queries)
    assert any(query.get("$skip") for query in queries), "paged with $skip"
    assert site.identity.token_requests == 1


def test_split_evidence_gives_one_event_per_alert_and_evidence(site: DefenderSite) -> None:
    site.api.add(alert(1, time.time() - 600))
    site.write_module(split_evidence="true")
    site.forwarder.start()
    wait_until(lambda: len(site.events()) >= 2, 60, "two evidence events")
    assert site.forwarder.terminate() == 0
    events = sorted(site.events(), key=lambda event: event["@metadata"]["_id"])
    assert [event["@metadata"]["_id"].rsplit("|", 1)[1] for event in events] == ["0", "1"]
    assert events[0]["file"]["name"] == "notepad.exe" and events[1]["file"]["name"] == "payload.dll"
    assert events[1]["microsoft"]["defender_atp"]["evidence"]["entityType"] == "File"


def test_an_alert_updated_twice_is_delivered_three_times_each_once(site: DefenderSite) -> None:
    site.api.add(alert(7, time.time() - 600))
    site.write_module(interval="200ms")
    site.forwarder.start()
    wait_until(lambda: len(site.events()) >= 1, 60, "the new alert")
    site.api.update("da6372910489_000007", graph_time(time.time()), status="InProgress", assignedTo="analyst@contoso")
    wait_until(lambda: len(site.events()) >= 2, 60, "the first update")
    site.api.update("da6372910489_000007", graph_time(time.time()), status="Resolved", classification="TruePositive")
    wait_until(lambda: len(site.events()) >= 3, 60, "the second update")
    polls = len(site.api.queries)
    wait_until(lambda: len(site.api.queries) >= polls + 3, 60, "three more polls over the same window")
    assert site.forwarder.terminate() == 0
    events = site.events()
    assert [event["microsoft"]["defender_atp"]["status"] for event in events] == ["New", "InProgress", "Resolved"]
    assert len({event["@metadata"]["_id"] for event in events}) == 3
    assert events[2]["event"]["type"] == ["end"]


def test_alerts_updated_between_two_pages_do_not_push_others_past_the_skip(site: DefenderSite) -> None:
    now = time.time()
    for number in range(30):
        site.api.add(alert(number, now - 1800 + number))
    # One window (the lookback is shorter than a backfill chunk), read in pages of 10. Before its second and
    # third page, alerts of the first page leave the window (updated later): every later alert moves forward
    # by one place, and under a plain $skip one of them would never be read.
    site.api.update_before_request(2, "da6372910489_000001", graph_time(now + 3600))
    site.api.update_before_request(3, "da6372910489_000003", graph_time(now + 3600))
    site.write_module(initial_lookback="1h")
    site.forwarder.start()
    wait_until(lambda: len({event["event"]["id"] for event in site.events()}) >= 30, 60, "all 30 alerts")
    assert [query.get("$skip") for query in site.api.queries[:4]] == [None, "9", "18", "27"]
    assert site.forwarder.terminate() == 0
    ids = Counter(event["@metadata"]["_id"] for event in site.events())
    assert max(ids.values()) == 1


def test_a_restart_resumes_from_the_committed_cursor(site: DefenderSite) -> None:
    now = time.time()
    for number in range(12):
        site.api.add(alert(number, now - 7200 - number * 60))
    site.write_module()
    site.forwarder.start()
    wait_until(lambda: len(site.events()) >= 12, 60, "the first 12 alerts")
    wait_until(lambda: any(query["$filter"].split(" ")[-1] >= graph_time(now) for query in site.api.queries), 60,
               "the backfill to reach the present")
    assert site.forwarder.terminate() == 0
    before = len(site.api.queries)
    for number in range(12, 15):
        site.api.add(alert(number, time.time() - 30))
    site.forwarder.start()
    wait_until(lambda: len(site.events()) >= 15, 60, "the 3 new alerts")
    assert site.forwarder.terminate() == 0
    events = site.events()
    assert len(events) == 15 and len({event["@metadata"]["_id"] for event in events}) == 15
    first_after_restart = site.api.queries[before]["$filter"]
    since = first_after_restart.split(" ")[2]
    assert since > graph_time(now - 600), f"read again from {since}, not from the committed cursor"


def test_throttling_and_the_budget_of_an_app_shared_by_two_pollers(site: DefenderSite) -> None:
    now = time.time()
    for number in range(30):
        site.api.add(alert(number, now - 60 - number * 60))
    site.api.throttle(1, "2")
    site.write_module(requests_per_minute=5, initial_lookback="1h")
    # A second poller of the same app and tenant, configured as a plain input: it shares the budget.
    site.forwarder.config_path.write_text(site.forwarder.config_path.read_text() + f"""
filebeat.inputs:
  - type: defender-atp
    id: second-poller
    tenant_id: "{TENANT}"
    client_id: "{CLIENT}"
    client_secret: "{SECRET}"
    api_host: "127.0.0.1:{site.server.port}"
    api.login_endpoint: "{site.server.url}"
    ssl.certificate_authorities: ["{site.server.ca_path}"]
    page_size: 11
    interval: 1h
    initial_lookback: 1h
""")
    site.forwarder.start()
    # One window per poller, of 4 pages (30 alerts, $top 10, $skip 0, 9, 18, 27) and of 3 pages ($top 11,
    # $skip 0, 10, 20), and one throttled answer: at least 8 requests, so the 6th must wait for the next minute.
    wait_until(lambda: len(site.events()) >= 60, 150, "both pollers' alerts")
    assert site.forwarder.terminate() == 0
    arrivals = sorted(site.api.arrivals)
    assert len(arrivals) >= 8
    assert site.api.most_requests_within(60 - 1.0) <= 5, arrivals
    # Retry-After: 2 — the throttled request is asked again (same query) only 2 s later, and the other poller
    # is held back too: besides its request already on the way, at most one it was granted before the 429
    # was read arrives in those 2 s.
    throttled_index = site.api.throttled_requests[0]
    throttled = site.api.arrivals[throttled_index]
    query = site.api.queries[throttled_index]
    retried = next(moment for moment, asked in zip(site.api.arrivals[throttled_index + 1:],
                                                  site.api.queries[throttled_index + 1:], strict=True)
                   if asked == query)
    assert retried - throttled >= 2 - 0.1
    assert sum(1 for moment in arrivals if throttled < moment < throttled + 1.9) <= 2, arrivals
    assert len({event["@metadata"]["_id"] for event in site.events() if event["input"]["type"] == "defender-atp"}) \
        == 30
    assert site.identity.token_requests == 1


def test_a_missing_permission_parks_the_input_with_one_line(site: DefenderSite) -> None:
    site.api.deny()
    site.write_module()
    site.forwarder.start()
    line = site.forwarder.wait_for_log("Alert.Read.All")
    assert "parked" in line["message"] and "403" in line["message"]
    assert site.forwarder.terminate() == 0
    log = site.forwarder.log_path.read_text()
    assert log.count("Alert.Read.All") == 1 and "Traceback" not in log
    assert len(site.api.queries) == 1


def test_kill_9_three_times_during_a_10000_alert_backfill_loses_nothing(site: DefenderSite) -> None:
    total = 10_000
    now = time.time()
    site.api.add_many([alert(number, now - 60 - number * 7.2) for number in range(total)])
    site.write_module(page_size=500, requests_per_minute=10000, requests_per_hour=100000)
    chooser = random.Random()
    seed = chooser.randrange(1 << 30)
    chooser.seed(seed)

    def delivered() -> set[str]:
        return {event["@metadata"]["_id"] for event in site.events()}

    for kill in range(3):
        site.forwarder.start()
        target = min(total, len(delivered()) + chooser.randint(500, 2_500))
        wait_until(lambda target=target: len(delivered()) >= target, 120, f"progress before kill {kill} (seed {seed})")
        site.forwarder.kill_hard()
    site.forwarder.start()
    wait_until(lambda: len(delivered()) >= total, 180, f"all {total} alerts (seed {seed})")
    assert site.forwarder.terminate() == 0
    ids = [event["@metadata"]["_id"] for event in site.events()]
    expected = {f"da6372910489_{n:06d}|{graph_time(now - 60 - n * 7.2)}" for n in range(total)}
    assert set(ids) == expected, f"alerts lost (seed {seed})"
    assert len(ids) - total <= 3 * 4096, f"{len(ids) - total} duplicates (seed {seed})"
