"""A credential quoted back by the identity endpoint never leaves the running forwarder in clear.

The fake login endpoint echoes the rejected client_secret in its error_description.
The input parks with that text as its error, which then travels through the error log
line, `last_error` in GET /stats and the periodic `metrics` line (its counters are in
the log record's `extra`). Every one of them must show `[REDACTED]` instead of the secret,
whether the secret came from the keystore or from the environment.
"""

from __future__ import annotations

import json
import re
import urllib.request
from pathlib import Path

import pytest
import trustme

from forwarder.config.keystore import Keystore
from tests.fakes.https_server import FakeHttpsServer
from tests.fakes.identity_platform import FakeIdentityPlatform
from tests.integration.forwarder_process import ForwarderProcess, wait_until

TENANT = "0b7c2d4e-6f81-4a3b-9c5d-7e9f1a2b3c4d"
CLIENT = "4e6f8a1b-3c5d-4e7f-9a1b-2c3d4e5f6a7b"
INPUT_ID = "entraid-signinlogs"
SECRET_NAME = "ENTRA_CLIENT_SECRET"


def write_module(home: Path, server: FakeHttpsServer) -> None:
    (home / "modules.d").mkdir(parents=True)
    module = home / "modules.d" / "entraid.yml"
    module.write_text(f"""
- module: entraid
  var.tenant_id: "{TENANT}"
  var.client_id: "{CLIENT}"
  var.client_secret: "${{{SECRET_NAME}}}"
  var.api.login_endpoint: "{server.url}"
  var.api.graph_endpoint: "{server.url}"
  var.ssl.certificate_authorities: ["{server.ca_path}"]
  signinlogs:
    enabled: true
""")
    module.chmod(0o600)


def stats_snapshot(forwarder: ForwarderProcess) -> str:
    listening = forwarder.wait_for_log("monitoring endpoint listening")["message"]
    url = re.search(r"http://\S+/stats", listening).group(0)
    with urllib.request.urlopen(url, timeout=5) as response:
        return response.read().decode()


def parked_metrics_line(forwarder: ForwarderProcess) -> dict | None:
    for line in forwarder.log_lines():
        if line.get("message") == "metrics":
            entry = line["monitoring"]["inputs"].get(INPUT_ID, {})
            if entry.get("state") == "parked":
                return entry
    return None


@pytest.mark.parametrize("source", ["keystore", "environment"])
def test_a_secret_echoed_by_the_login_endpoint_is_redacted_in_logs_metrics_and_stats(tmp_path, monkeypatch, source):
    secret = f"{source}~Rejected.Secret_9Zq"
    home = tmp_path / "home"
    monkeypatch.delenv(SECRET_NAME, raising=False)
    if source == "keystore":
        Keystore(home / "data" / "forwarder.keystore").add(SECRET_NAME, secret)
    else:
        monkeypatch.setenv(SECRET_NAME, secret)
    with FakeHttpsServer(trustme.CA()) as server:
        identity = FakeIdentityPlatform(server)
        identity.register_app(TENANT, CLIENT, secret="the-registered-secret")
        identity.echo_rejected_secrets = True
        write_module(home, server)
        forwarder = ForwarderProcess(home, """
            output.file:
              path: ${path.data}/events
            http.enabled: true
            http.host: 127.0.0.1
            http.port: 0
            logging.metrics.period: 0.2s
            """).start()
        try:
            forwarder.wait_for_log(f"input {INPUT_ID} parked")
            metrics = wait_until(lambda: parked_metrics_line(forwarder), 30, "a metrics line of the parked input")
            stats_text = stats_snapshot(forwarder)
            assert forwarder.terminate() == 0
        finally:
            forwarder.stop()
    assert identity.token_requests >= 1
    # The error text did travel everywhere (so the checks below mean something), with the secret hidden.
    assert "client_secret=[REDACTED]" in metrics["last_error"]
    stats = json.loads(stats_text)["inputs"][INPUT_ID]
    assert stats["state"] == "parked" and "client_secret=[REDACTED]" in stats["last_error"]
    assert secret not in stats_text
    log_text = forwarder.log_path.read_text()
    assert secret not in log_text
