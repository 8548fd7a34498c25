"""kill -9 during a large Entra ID backfill through the real process: restart, and nothing is lost."""

from __future__ import annotations

import random
import time
from pathlib import Path

import trustme

from forwarder.net.graph_client import graph_time
from tests.fakes.graph_api import FakeGraphApi
from tests.fakes.https_server import FakeHttpsServer
from tests.fakes.identity_platform import FakeIdentityPlatform
from tests.integration.forwarder_process import ForwarderProcess, output_events, wait_until

TENANT = "5d2c8e1a-3b4f-4c6d-9e8f-0a1b2c3d4e5f"
CLIENT = "9e8d7c6b-5a4f-4e3d-8c2b-1a0f9e8d7c6b"
SECRET = "backfill~Secret-Must_Not_Leak"
TOTAL = 20_000
QUEUE_EVENTS = 4096


def delivered_ids(home: Path) -> list[str]:
    return [event["@metadata"]["_id"] for event in output_events(home)]


def test_kill_9_during_a_backfill_loses_no_sign_in(tmp_path, monkeypatch):
    monkeypatch.setenv("ENTRA_CLIENT_SECRET", SECRET)
    with FakeHttpsServer(trustme.CA()) as server:
        identity = FakeIdentityPlatform(server)
        identity.register_app(TENANT, CLIENT, secret=SECRET)
        graph = FakeGraphApi(server, identity)
        now = time.time()
        for number in range(TOTAL):  # twenty hours of sign-ins, one every 3.6 s
            graph.add("auditLogs/signIns", {
                "id": f"signin-{number:05d}", "createdDateTime": graph_time(now - 60 - number * 3.6),
                "signInEventTypes": ["interactiveUser"], "userPrincipalName": f"u{number}@contoso.example",
                "ipAddress": "198.51.100.4", "status": {"errorCode": 0},
            })
        home = tmp_path / "home"
        (home / "modules.d").mkdir(parents=True)
        module = home / "modules.d" / "entraid.yml"
        module.write_text(f"""
- module: entraid
  var.tenant_id: "{TENANT}"
  var.client_id: "{CLIENT}"
  var.client_secret: "${{ENTRA_CLIENT_SECRET}}"
  var.api.login_endpoint: "{server.url}"
  var.api.graph_endpoint: "{server.url}"
  var.ssl.certificate_authorities: ["{server.ca_path}"]
  var.initial_lookback: 24h
  var.requests_per_10s: 10000
  var.poll_interval: 1s
  signinlogs:
    enabled: true
    var.page_size: 500
""")
        module.chmod(0o600)
        forwarder = ForwarderProcess(home, f"""
            queue.mem:
              events: {QUEUE_EVENTS}
              flush.min_events: 500
              flush.timeout: 50ms
            forwarder.registry.flush: 0s
            output.file:
              path: ${{path.data}}/events
              bulk_max_size: 500
            logging.metrics.enabled: false
            """)
        seed = random.randrange(1 << 30)
        chooser = random.Random(seed)
        try:
            for kill in range(3):
                forwarder.start()
                target = min(TOTAL, len(set(delivered_ids(home))) + chooser.randint(1_000, 5_000))
                wait_until(lambda target=target: len(set(delivered_ids(home))) >= target, 90,
                           f"backfill progress before kill {kill} (seed {seed})")
                forwarder.kill_hard()
            forwarder.start()
            wait_until(lambda: len(set(delivered_ids(home))) >= TOTAL, 120, f"all {TOTAL} sign-ins (seed {seed})")
            assert forwarder.terminate() == 0
        finally:
            forwarder.stop()
        assert server.handler_errors == []
    ids = delivered_ids(home)
    assert set(ids) == {f"signin-{n:05d}" for n in range(TOTAL)}, f"sign-ins lost (seed {seed})"
    assert len(ids) - TOTAL <= 3 * QUEUE_EVENTS, f"{len(ids) - TOTAL} duplicates (seed {seed})"
    assert SECRET not in forwarder.log_path.read_text()
