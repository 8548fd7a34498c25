"""Shared budgets through the real process: two entraid filesets of one app keep one Graph budget and one token."""

from __future__ import annotations

import re
import time
from pathlib import Path

import trustme

from forwarder.net.graph_client import graph_time
from tests.fakes.graph_api import FakeGraphApi
from tests.fakes.https_server import FakeHttpsServer, Reply, Request
from tests.fakes.identity_platform import FakeIdentityPlatform
from tests.integration.forwarder_process import ForwarderProcess, output_events, wait_until

TENANT = "6e2a4c8e-1b3d-4f5a-9c7e-2b4d6f8a0c13"
CLIENT = "2a4c6e8a-0c2e-4b6d-8f1a-3c5e7a9c1e24"
SECRET = "shared~Budget.Secret-Must_Not_Leak"
PER_10S = 3
RECORDS_PER_STREAM = 6
# The pacer counts when it lets a request go; the fake sees it a little later. A span this much shorter than
# 10 s still holds at most PER_10S arrivals whatever the network added to each request.
ARRIVAL_SLACK = 0.5


class TimedGraph(FakeGraphApi):
    """The fake Graph, also noting when each request arrived (monotonic seconds)."""

    def __init__(self, server: FakeHttpsServer, identity: FakeIdentityPlatform) -> None:
        self.arrivals: list[float] = []
        super().__init__(server, identity)

    def _list(self, request: Request, match: re.Match[str]) -> Reply:
        self.arrivals.append(time.monotonic())
        return super()._list(request, match)

    def _application(self, request: Request, match: re.Match[str]) -> Reply:
        self.arrivals.append(time.monotonic())
        return super()._application(request, match)


def most_in_any_span(arrivals: list[float], seconds: float) -> int:
    ordered = sorted(arrivals)
    return max((sum(1 for later in ordered[i:] if later - first < seconds) for i, first in enumerate(ordered)),
               default=0)


def test_signinlogs_and_auditlogs_of_one_app_share_one_budget_and_one_token(tmp_path: Path) -> None:
    with FakeHttpsServer(trustme.CA()) as server:
        identity = FakeIdentityPlatform(server)
        identity.register_app(TENANT, CLIENT, secret=SECRET)
        graph = TimedGraph(server, identity)
        now = time.time()
        for number in range(RECORDS_PER_STREAM):
            graph.add("auditLogs/signIns", {"id": f"signin-{number}", "createdDateTime": graph_time(now - 600 - number),
                                            "signInEventTypes": ["interactiveUser"]})
            graph.add("auditLogs/directoryAudits", {"id": f"audit-{number}",
                                                    "activityDateTime": graph_time(now - 600 - number)})
        home = tmp_path / "home"
        (home / "modules.d").mkdir(parents=True)
        module = home / "modules.d" / "entraid.yml"
        module.write_text(f"""
- module: entraid
  var.tenant_id: "{TENANT}"
  var.client_id: "{CLIENT}"
  var.client_secret: "{SECRET}"
  var.api.login_endpoint: "{server.url}"
  var.api.graph_endpoint: "{server.url}"
  var.ssl.certificate_authorities: ["{server.ca_path}"]
  var.initial_lookback: 1h
  var.requests_per_10s: {PER_10S}
  var.page_size: 3
  var.poll_interval: 1h
  signinlogs:
    enabled: true
  auditlogs:
    enabled: true
""")
        module.chmod(0o600)
        forwarder = ForwarderProcess(home, """
            output.file:
              path: ${path.data}/events
            logging.metrics.enabled: false
            """)
        try:
            forwarder.start()
            wait_until(lambda: len(output_events(home)) >= 2 * RECORDS_PER_STREAM, 90, "both filesets' records")
            assert forwarder.terminate() == 0
        finally:
            forwarder.stop()
        assert server.handler_errors == []
    # Each fileset needs 3 requests (2 pages and the credential check): 6 in all, twice PER_10S, so the two
    # filesets' requests fill one 10 s budget and the rest waits for the next.
    assert len(graph.arrivals) >= 2 * PER_10S
    assert most_in_any_span(graph.arrivals, 10.0 - ARRIVAL_SLACK) <= PER_10S, sorted(graph.arrivals)
    assert identity.token_requests == 1
