"""A `${NAME}` secret reaches the token endpoint exactly as stored, through the running forwarder.

Values such as `0x1F2E`, `yes`, `01234567` or `1:20` read as YAML would become 7982, True,
342391 and 80: the login endpoint would reject the credential and the input would park.
The secret is registered with the fake identity platform as the text itself, so a sign-in
is delivered only if the forwarder sent that text.
"""

from __future__ import annotations

import time

import pytest
import trustme

from forwarder.config.keystore import Keystore
from forwarder.net.graph_client import graph_time
from tests.fakes.graph_api import FakeGraphApi
from tests.fakes.https_server import FakeHttpsServer
from tests.fakes.identity_platform import FakeIdentityPlatform
from tests.integration.forwarder_process import ForwarderProcess, output_events, wait_until

TENANT = "7a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"
CLIENT = "2b3c4d5e-6f7a-4b8c-9d0e-1f2a3b4c5d6e"
SECRET_NAME = "ENTRA_CLIENT_SECRET"


def delivered_or_parked(forwarder: ForwarderProcess) -> str | None:
    if any(event["@metadata"]["_id"] == "signin-1" for event in output_events(forwarder.home)):
        return "delivered"
    if any("parked" in line.get("message", "") for line in forwarder.log_lines()):
        return "parked"
    return None


@pytest.mark.parametrize(("source", "secret"), [
    ("keystore", "0x1F2E"), ("keystore", "yes"), ("environment", "01234567"), ("environment", "1:20"),
])
def test_a_secret_that_looks_like_a_yaml_number_or_boolean_is_sent_as_written(tmp_path, monkeypatch, source, secret):
    home = tmp_path / "home"
    monkeypatch.delenv(SECRET_NAME, raising=False)
    if source == "keystore":
        Keystore(home / "data" / "forwarder.keystore").add(SECRET_NAME, secret)
    else:
        monkeypatch.setenv(SECRET_NAME, secret)
    with FakeHttpsServer(trustme.CA()) as server:
        identity = FakeIdentityPlatform(server)
        identity.register_app(TENANT, CLIENT, secret=secret)
        graph = FakeGraphApi(server, identity)
        graph.add("auditLogs/signIns", {
            "id": "signin-1", "createdDateTime": graph_time(time.time() - 60),
            "signInEventTypes": ["interactiveUser"], "userPrincipalName": "u1@contoso.example",
            "status": {"errorCode": 0},
        })
        (home / "modules.d").mkdir(parents=True)
        module = home / "modules.d" / "entraid.yml"
        module.write_text(f"""
- module: entraid
  var.tenant_id: "{TENANT}"
  var.client_id: "{CLIENT}"
  var.client_secret: ${{{SECRET_NAME}}}
  var.api.login_endpoint: "{server.url}"
  var.api.graph_endpoint: "{server.url}"
  var.ssl.certificate_authorities: ["{server.ca_path}"]
  var.initial_lookback: 1h
  var.poll_interval: 1s
  signinlogs:
    enabled: true
""")
        module.chmod(0o600)
        forwarder = ForwarderProcess(home, """
            output.file:
              path: ${path.data}/events
            queue.mem.flush.timeout: 10ms
            logging.metrics.enabled: false
            """).start()
        try:
            outcome = wait_until(lambda: delivered_or_parked(forwarder), 60, "the sign-in delivered or input parked")
            assert forwarder.terminate() == 0
        finally:
            forwarder.stop()
    assert outcome == "delivered", forwarder.log_path.read_text()[-2000:]
