"""kill -9 during an Office 365 audit backfill through the real process: restart, and nothing is lost."""

from __future__ import annotations

import random
from pathlib import Path

import trustme

from tests.fakes.https_server import FakeHttpsServer
from tests.fakes.identity_platform import FakeIdentityPlatform
from tests.fakes.management_api import FakeManagementApi, audit_record
from tests.integration.forwarder_process import ForwarderProcess, output_events, wait_until

TENANT = "8e7d6c5b-4a3f-4e2d-9c1b-0a9f8e7d6c5b"
APP = "1f2e3d4c-5b6a-4798-8a7b-6c5d4e3f2a1b"
SECRET = "o365-kill~Secret-Must_Not_Leak"
CONTENT_TYPES = ("Audit.Exchange", "Audit.SharePoint")
BLOBS_PER_TYPE = 24
RECORDS_PER_BLOB = 300
TOTAL = len(CONTENT_TYPES) * BLOBS_PER_TYPE * RECORDS_PER_BLOB
QUEUE_EVENTS = 2048


def delivered_ids(home: Path) -> list[str]:
    return [event["@metadata"]["_id"] for event in output_events(home)]


def test_kill_9_during_a_backfill_loses_no_audit_record(tmp_path, monkeypatch):
    monkeypatch.setenv("O365_CLIENT_SECRET", SECRET)
    with FakeHttpsServer(trustme.CA()) as server:
        identity = FakeIdentityPlatform(server)
        identity.register_app(TENANT, APP, secret=SECRET)
        api = FakeManagementApi(server, identity, page_size=5)
        api.add_tenant(TENANT)
        for content_type in CONTENT_TYPES:
            for blob in range(BLOBS_PER_TYPE):  # six days of blobs, one every six hours
                age = 6 * 86400 - blob * 6 * 3600
                records = [audit_record(api.now() - age - 60, record_id=f"{content_type}-{blob:02d}-{n:03d}")
                           for n in range(RECORDS_PER_BLOB)]
                api.add_blob(TENANT, content_type, records, age=age)
        home = tmp_path / "home"
        forwarder = ForwarderProcess(home, f"""
            forwarder.inputs:
              - type: o365audit
                id: o365-audit
                application_id: "{APP}"
                tenant_id: "{TENANT}"
                client_secret: "${{O365_CLIENT_SECRET}}"
                content_type: {list(CONTENT_TYPES)}
                api.authentication_endpoint: "{server.url}"
                api.resource: "{server.url}"
                api.poll_interval: 1s
                api.error_retry_interval: 1s
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
            for kill in range(2):
                forwarder.start()
                target = min(TOTAL, len(set(delivered_ids(home))) + chooser.randint(1_000, 4_000))
                wait_until(lambda target=target: len(set(delivered_ids(home))) >= target, 60,
                           f"backfill progress before kill {kill} (seed {seed})")
                forwarder.kill_hard()
            forwarder.start()
            wait_until(lambda: len(set(delivered_ids(home))) >= TOTAL, 60, f"all {TOTAL} records (seed {seed})")
            assert forwarder.terminate() == 0
        finally:
            forwarder.stop()
        assert server.handler_errors == []
    ids = delivered_ids(home)
    expected = {f"{ct}-{blob:02d}-{n:03d}" for ct in CONTENT_TYPES for blob in range(BLOBS_PER_TYPE)
                for n in range(RECORDS_PER_BLOB)}
    assert set(ids) == expected, f"records lost (seed {seed})"
    assert len(ids) - TOTAL <= 2 * QUEUE_EVENTS, f"{len(ids) - TOTAL} duplicates (seed {seed})"
    assert SECRET not in forwarder.log_path.read_text()
