"""kill -9 three times during a 20,000-record Duo authentication backfill: nothing lost, duplicates bounded."""

from __future__ import annotations

import random
import time
from pathlib import Path

import trustme

from tests.fakes.duo_admin_api import FakeDuoAdminApi
from tests.fakes.https_server import FakeHttpsServer
from tests.integration.forwarder_process import ForwarderProcess, output_events, wait_until
from tests.integration.test_duo_input import IKEY, SKEY, fill

TOTAL = 20_000
QUEUE_EVENTS = 4096
PAGE = 1000


def delivered_ids(home: Path) -> list[str]:
    return [event["@metadata"]["_id"] for event in output_events(home)]


def test_kill_9_during_an_auth_backfill_loses_no_record(tmp_path, monkeypatch):
    monkeypatch.setenv("DUO_SECRET_KEY", SKEY)
    with FakeHttpsServer(trustme.CA()) as server:
        duo = FakeDuoAdminApi(server, IKEY, SKEY)
        # Twenty hours of authentications, two per millisecond so that restarts land between equal times.
        expected = set(fill(duo, "auth", TOTAL, int(time.time() * 1000) - 20 * 3600_000, 7000))
        home = tmp_path / "home"
        forwarder = ForwarderProcess(home, f"""
            forwarder.inputs:
              - type: duo
                id: duo-auth
                api_hostname: "127.0.0.1:{server.port}"
                integration_key: "{IKEY}"
                secret_key: "${{DUO_SECRET_KEY}}"
                streams: [auth]
                initial_lookback: 24h
                ssl.certificate_authorities: ["{server.ca_path}"]
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
                wait_until(lambda target=target: len(set(delivered_ids(home))) >= target, 60,
                           f"backfill progress before kill {kill} (seed {seed})")
                forwarder.kill_hard()
            forwarder.start()
            wait_until(lambda: len(set(delivered_ids(home))) >= TOTAL, 60, f"all {TOTAL} records (seed {seed})")
            assert forwarder.terminate() == 0
        finally:
            forwarder.stop()
        assert server.handler_errors == [] and duo.rejected_signatures == 0
    ids = delivered_ids(home)
    assert set(ids) == expected, f"records lost (seed {seed})"
    # What a kill can repeat is what was in flight: the queue plus the page being published.
    assert len(ids) - TOTAL <= 3 * (QUEUE_EVENTS + PAGE), f"{len(ids) - TOTAL} duplicates (seed {seed})"
    assert SKEY not in forwarder.log_path.read_text()
