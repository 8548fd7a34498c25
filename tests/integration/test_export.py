"""`forwarder export entraid` as a user runs it: the real command against the fake identity platform and Graph."""

from __future__ import annotations

import csv
import io
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import trustme

from forwarder.export.csv_columns import AUDIT_COLUMNS, COLUMNS, SIGN_IN_COLUMNS
from forwarder.net.graph_client import graph_time
from tests.fakes.graph_api import FakeGraphApi
from tests.fakes.https_server import FakeHttpsServer
from tests.fakes.identity_platform import FakeIdentityPlatform
from tests.integration.forwarder_process import ForwarderProcess, output_events, wait_until

TENANT = "6e1b3d5f-7a9c-4b2d-8e0f-1a3c5e7b9d02"
CLIENT = "0c2e4a6b-8d1f-4a3c-9e5b-7d9f1b3c5e04"
SECRET = "export~Secret.Value-Must_Not_Leak"
SIGN_INS = "auditLogs/signIns"
AUDITS = "auditLogs/directoryAudits"
FIXTURES = Path(__file__).parent.parent / "fixtures" / "entraid"
SINCE, UNTIL = "2026-11-01T00:00:00Z", "2026-11-02T00:00:00Z"
DAY_START = 1793491200.0  # 2026-11-01T00:00:00Z


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@dataclass
class Site:
    """A forwarder home with the entraid module configured against the fakes (only auditlogs enabled)."""

    home: Path
    server: FakeHttpsServer
    identity: FakeIdentityPlatform
    graph: FakeGraphApi

    def write_module(self, extra_vars: str = "", secret_line: str = 'var.client_secret: "${ENTRA_CLIENT_SECRET}"'):
        module = self.home / "modules.d" / "entraid.yml"
        module.parent.mkdir(parents=True, exist_ok=True)
        module.write_text(textwrap.dedent(f"""\
            - module: entraid
              var.tenant_id: "{TENANT}"
              var.client_id: "{CLIENT}"
              {secret_line}
              var.api.login_endpoint: "{self.server.url}"
              var.api.graph_endpoint: "{self.server.url}"
              var.ssl.certificate_authorities: ["{self.server.ca_path}"]
              var.requests_per_10s: 10000
              var.poll_interval: 1s
              {extra_vars}
              signinlogs:
                enabled: false
                var.page_size: 10
              auditlogs:
                enabled: true
            """))
        module.chmod(0o600)

    def export(self, *args: str, env: dict[str, str] | None = None, secret: str | None = SECRET) -> Result:
        environment = {key: value for key, value in os.environ.items() if key != "ENTRA_CLIENT_SECRET"}
        if secret is not None:
            environment["ENTRA_CLIENT_SECRET"] = secret
        environment.update(env or {})
        completed = subprocess.run(
            [sys.executable, "-m", "forwarder", "export", "entraid", "--path.home", str(self.home), *args],
            cwd=self.home, capture_output=True, timeout=60, env=environment, check=False)
        return Result(completed.returncode, completed.stdout, completed.stderr.decode())

    def add_sign_in(self, number: int, when: float, **fields: Any) -> dict[str, Any]:
        return self.graph.add(SIGN_INS, {
            "id": f"signin-{number:04d}", "createdDateTime": graph_time(when),
            "userPrincipalName": f"u{number}@contoso.example", "userId": f"user-{number}",
            "ipAddress": "198.51.100.7", "appDisplayName": "Azure Portal",
            "signInEventTypes": ["interactiveUser"], "status": {"errorCode": 0}, **fields,
        })


@dataclass
class Result:
    code: int
    stdout: bytes
    stderr: str

    def lines(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.stdout.decode().splitlines()]

    def rows(self) -> list[list[str]]:
        return list(csv.reader(io.StringIO(self.stdout.decode(), newline="")))

    def error_lines(self) -> list[str]:
        return [line for line in self.stderr.splitlines() if line.strip()]


@pytest.fixture
def site(tmp_path: Path, ca: trustme.CA) -> Iterator[Site]:
    with FakeHttpsServer(ca) as server:
        identity = FakeIdentityPlatform(server)
        identity.register_app(TENANT, CLIENT, secret=SECRET)
        graph = FakeGraphApi(server, identity)
        home = tmp_path / "home"
        home.mkdir()
        config = home / "forwarder.yml"
        config.write_text(textwrap.dedent("""\
            output.file:
              path: ${path.data}/events
            tags: [audit-site]
            fields: {site: lab}
            processors:
              - add_fields:
                  target: labels
                  fields: {exported_by: pipeline}
            logging.metrics.enabled: false
            """))
        config.chmod(0o600)
        result = Site(home, server, identity, graph)
        result.write_module()
        yield result
    assert server.handler_errors == []


def fixture(name: str, **changes: Any) -> dict[str, Any]:
    record = json.loads((FIXTURES / name).read_text())
    record.update(changes)
    return record


def test_ndjson_of_several_pages_is_the_events_of_the_range_with_pipeline_fields(site: Site):
    inside = [site.add_sign_in(n, DAY_START + 60 + n * 1000) for n in range(25)]
    site.add_sign_in(900, DAY_START - 0.001)  # just before since
    site.add_sign_in(901, DAY_START + 86400)  # exactly at until: the range is half-open
    site.add_sign_in(902, DAY_START + 90000)
    result = site.export("--fileset", "signinlogs", "--since", SINCE, "--until", UNTIL)
    assert result.code == 0, result.stderr
    events = result.lines()
    assert [event["@metadata"]["_id"] for event in events] == [r["id"] for r in reversed(inside)]  # newest first
    assert len(site.graph.requests_to(SIGN_INS)) == 3  # pages of 10 (the fileset's var.page_size)
    by_id = {record["id"]: record for record in inside}
    for event in events:
        assert json.loads(event["message"]) == by_id[event["@metadata"]["_id"]]
        assert event["@metadata"]["beat"] == "filebeat" and event["@metadata"]["type"] == "_doc"
        assert event["event"]["module"] == "entraid" and event["event"]["dataset"] == "entraid.signinlogs"
        assert event["fileset"]["name"] == "signinlogs" and event["input"]["type"] == "graph"
        assert event["agent"]["type"] == "filebeat" and event["ecs"]["version"] and event["host"]["name"]
        assert event["source"]["ip"] == "198.51.100.7" and event["user"]["id"].startswith("user-")
        assert event["tags"] == ["audit-site"] and event["fields"] == {"site": "lab"}
        assert event["labels"] == {"exported_by": "pipeline"}
    assert events[-1]["@timestamp"] == "2026-11-01T00:01:00.000Z"
    assert "export finished: 25 records from 3 pages" in result.error_lines()[-1]
    assert not (site.home / "data").exists(), "an export must not create anything under path.data"


def test_ndjson_lines_are_what_forwarder_run_ships(site: Site, monkeypatch: pytest.MonkeyPatch):
    now = time.time()
    for n in range(30):
        site.add_sign_in(n, now - 600 - n * 60, signInEventTypes=[("interactiveUser", "nonInteractiveUser")[n % 2]])
    monkeypatch.setenv("ENTRA_CLIENT_SECRET", SECRET)
    site.write_module("var.initial_lookback: 2h")
    module = site.home / "modules.d" / "entraid.yml"
    module.write_text(module.read_text().replace("enabled: false", "enabled: true"))
    forwarder = ForwarderProcess(site.home, (site.home / "forwarder.yml").read_text())
    try:
        forwarder.start()
        wait_until(lambda: len(output_events(site.home)) >= 30, 30, "30 shipped sign-ins")
        assert forwarder.terminate() == 0
    finally:
        forwarder.stop()
    shipped = {event["@metadata"]["_id"]: event for event in output_events(site.home)}
    registry_before = registry_files(site.home)
    result = site.export("--fileset", "signinlogs", "--since", "2h", "-o", "signins.ndjson")
    assert result.code == 0, result.stderr
    exported = [json.loads(line) for line in (site.home / "signins.ndjson").read_text().splitlines()]
    assert {event["@metadata"]["_id"] for event in exported} == set(shipped)
    for event in exported:
        twin = shipped[event["@metadata"]["_id"]]
        assert event["agent"].pop("ephemeral_id") != twin["agent"].pop("ephemeral_id")
        assert event == twin
    # Byte for byte (key order included), but for the ephemeral id of each process.
    shipped_lines = lines_by_id(line for path in sorted((site.home / "data" / "events").glob("*.ndjson"))
                                for line in path.read_text().splitlines())
    assert lines_by_id((site.home / "signins.ndjson").read_text().splitlines()) == shipped_lines
    assert registry_files(site.home) == registry_before


def lines_by_id(lines: Iterable[str]) -> dict[str, str]:
    """NDJSON lines by `@metadata._id`, each with its process's `agent.ephemeral_id` blanked."""
    found = {}
    for line in lines:
        event = json.loads(line)
        found[event["@metadata"]["_id"]] = line.replace(event["agent"]["ephemeral_id"], "")
    return found


def registry_files(home: Path) -> dict[str, bytes]:
    data = home / "data"
    return {str(path.relative_to(data)): path.read_bytes() for path in sorted(data.rglob("*")) if path.is_file()}


def test_csv_of_sign_ins_has_the_documented_columns(site: Site):
    records = [
        fixture("signin_interactive_success.json", createdDateTime="2026-11-01T08:21:43.1276543Z"),
        fixture("signin_failed_password.json", createdDateTime="2026-11-01T08:25:10.5Z"),
        fixture("signin_service_principal.json", createdDateTime="2026-11-01T09:10:00Z",
                userAgent="=HYPERLINK(\"http://attacker.example\")"),
    ]
    for record in records:
        site.graph.add(SIGN_INS, record)
    result = site.export("--fileset", "signinlogs", "--since", SINCE, "--until", UNTIL, "--format", "csv")
    assert result.code == 0, result.stderr
    header, *rows = result.rows()
    assert header == [column.header for column in SIGN_IN_COLUMNS]
    table = [dict(zip(header, row, strict=True)) for row in rows]
    assert [row["Request ID"] for row in table] == [records[2]["id"], records[1]["id"], records[0]["id"]]
    service, failed, success = table
    assert (success["Date (UTC)"], success["Status"], success["Sign-in error code"]) == (
        "2026-11-01T08:21:43.1276543Z", "Success", "0")
    assert success["Username"] == "AdeleV@contoso.onmicrosoft.com" and success["Location"] == "Redmond, Washington, US"
    assert success["Authentication methods"] == (
        "Password (Correct password); Mobile app notification (MFA successfully completed)")
    assert success["Conditional Access policies applied"] == "Require MFA for admins: success"
    assert success["Compliant"] == "false" and success["Device ID"] == ""
    assert (failed["Status"], failed["Sign-in error code"]) == ("Failure", "50126")
    assert failed["Failure reason"] == "Error validating credentials due to invalid username or password."
    assert failed["Risk event types"] == "unfamiliarFeatures" and failed["Browser"] == "Mobile Safari"
    assert service["Service principal name"] == records[2]["servicePrincipalName"] and service["User"] == ""
    assert service["User agent"] == "'=HYPERLINK(\"http://attacker.example\")"  # not a formula in a spreadsheet
    assert b"\r\n" in result.stdout


def test_csv_of_audit_logs_names_actor_targets_and_changes(site: Site):
    added = site.graph.add(AUDITS, fixture("audit_user_add_member.json", activityDateTime="2026-11-01T10:41:43.72Z"))
    by_app = site.graph.add(AUDITS, fixture("audit_app_update_user.json", activityDateTime="2026-11-01T11:05:09.4Z"))
    result = site.export("--fileset", "auditlogs", "--since", SINCE, "--until", UNTIL, "--format", "csv")
    assert result.code == 0, result.stderr
    header, *rows = result.rows()
    assert header == [column.header for column in AUDIT_COLUMNS]
    app_row, user_row = (dict(zip(header, row, strict=True)) for row in rows)
    assert (user_row["ID"], user_row["Activity"], user_row["Result"]) == (added["id"], "Add member to group", "success")
    assert (user_row["Actor type"], user_row["Actor user principal name"]) == ("User", "AdeleV@contoso.onmicrosoft.com")
    assert (user_row["Target 1 type"], user_row["Target 1 user principal name"]) == (
        "User", "MeganB@contoso.onmicrosoft.com")
    assert (user_row["Target 2 type"], user_row["Target 2 display name"]) == ("Group", "Sales and Marketing")
    assert (app_row["ID"], app_row["Actor type"]) == (by_app["id"], "App")
    assert app_row["Actor display name"] == "Contoso HR Sync"
    assert app_row["Actor app ID"] == "3f0e2c5a-6b7d-4c8e-9f1a-2b3c4d5e6f7a" and app_row["IP address"] == ""
    assert 'JobTitle: ["Engineer"] -> ["Senior Engineer"]' in app_row["Modified properties"]
    assert app_row["Additional details"] == "UserType=Member; RetryCount=0"


ENDPOINT_FIXTURES = {
    "provisioning": [("auditLogs/provisioning", "provisioning_create_failure.json", "activityDateTime")],
    "identity_protection": [
        ("identityProtection/riskDetections", "risk_detection_unfamiliar.json", "lastUpdatedDateTime"),
        ("identityProtection/riskyUsers", "risky_user.json", "riskLastUpdatedDateTime"),
    ],
    "alerts": [("security/alerts_v2", "alert_with_evidence.json", "lastUpdateDateTime")],
    "incidents": [("security/incidents", "incident.json", "lastUpdateDateTime")],
}


@pytest.mark.parametrize("fileset", sorted(ENDPOINT_FIXTURES))
def test_every_other_fileset_exports_to_csv_and_ndjson(site: Site, fileset: str):
    ids = []
    for endpoint, name, time_field in ENDPOINT_FIXTURES[fileset]:
        ids.append(site.graph.add(endpoint, fixture(name, **{time_field: "2026-11-01T12:00:00Z"}))["id"])
    result = site.export("--fileset", fileset, "--since", SINCE, "--until", UNTIL, "--format", "csv")
    assert result.code == 0, result.stderr
    header, *rows = result.rows()
    assert header == [column.header for column in COLUMNS[fileset]]
    assert sorted(row[header.index("ID")] for row in rows) == sorted(ids)
    if fileset == "identity_protection":
        assert [row[0] for row in rows] == ["riskDetection", "riskyUser"]
    events = site.export("--fileset", fileset, "--since", SINCE, "--until", UNTIL).lines()
    assert {event["event"]["dataset"] for event in events} == {f"entraid.{fileset}"}
    assert sorted(json.loads(event["message"])["id"] for event in events) == sorted(ids)


def test_a_throttled_export_waits_and_delivers_every_record(site: Site):
    for n in range(30):
        site.add_sign_in(n, DAY_START + 3600 + n)
    site.graph.fail(SIGN_INS, 429, count=3, after=1, retry_after="3")
    started = time.monotonic()
    result = site.export("--fileset", "signinlogs", "--since", SINCE, "--until", UNTIL)
    assert result.code == 0, result.stderr
    assert time.monotonic() - started >= 9.0  # Retry-After was honoured, three times
    assert sorted(event["@metadata"]["_id"] for event in result.lines()) == [f"signin-{n:04d}" for n in range(30)]
    lines = result.error_lines()
    assert lines[-1].startswith("export finished: 30 records from 3 pages in ")
    assert "3 throttling waits (9 s); 30 events written to standard output" in lines[-1]
    # Not a terminal: a plain progress line every 5 s, which shows the export waiting out the throttling.
    progress = [line for line in lines if line.startswith("export: signinlogs ")]
    assert progress and "10 records, 1 page, " in progress[0] and "throttling wait" in progress[0]
    assert "\r" not in result.stderr
    assert sum("warning: GET" in line and "HTTP 429" in line for line in lines) == 3


def test_relative_since_reads_back_from_now(site: Site):
    now = time.time()
    site.add_sign_in(1, now - 3600)
    site.add_sign_in(2, now - 3 * 3600)
    site.add_sign_in(3, now - 9 * 86400)
    assert [e["@metadata"]["_id"] for e in site.export("--fileset", "signinlogs", "--since", "2h").lines()] == [
        "signin-0001"]
    week = site.export("--fileset", "signinlogs", "--since", "7d", "--until", "90m").lines()
    assert [event["@metadata"]["_id"] for event in week] == ["signin-0002"]


def test_output_file_appears_only_when_complete(site: Site):
    for n in range(12):
        site.add_sign_in(n, DAY_START + 60 * n)
    target = site.home / "out" / "signins.csv"
    target.parent.mkdir()
    result = site.export("--fileset", "signinlogs", "--since", SINCE, "--until", UNTIL, "--format", "csv",
                         "-o", str(target))
    assert result.code == 0, result.stderr
    assert result.stdout == b""
    assert sorted(path.name for path in target.parent.iterdir()) == ["signins.csv"]
    assert len(target.read_text().splitlines()) == 13
    assert result.error_lines()[-1].endswith(f"12 rows written to {target}")


def test_ctrl_c_stops_with_130_and_leaves_only_the_partial_file(site: Site):
    for n in range(25):
        site.add_sign_in(n, DAY_START + 3600 + 60 * n)
    site.graph.fail(SIGN_INS, 429, count=1, after=1, retry_after="120")
    target = site.home / "signins.ndjson"
    env = {**os.environ, "ENTRA_CLIENT_SECRET": SECRET}
    process = subprocess.Popen(
        [sys.executable, "-m", "forwarder", "export", "entraid", "--path.home", str(site.home), "--fileset",
         "signinlogs", "--since", SINCE, "--until", UNTIL, "-o", str(target)],
        cwd=site.home, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_until(lambda: len(site.graph.requests_to(SIGN_INS)) >= 2, 30, "the throttled second page request")
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 130, stderr
    last = stderr.strip().splitlines()[-1]
    assert last.startswith("export interrupted: 10 records from 1 page in")
    assert "back to 2026-11-01T01:15:00Z of [2026-11-01T00:00:00Z, 2026-11-02T00:00:00Z)" in last
    assert f"incomplete output is in {target}.partial" in last
    assert not target.exists()
    partial = Path(f"{target}.partial").read_text().splitlines()
    assert [json.loads(line)["@metadata"]["_id"] for line in partial] == [f"signin-{n:04d}" for n in range(24, 14, -1)]
    assert "Traceback" not in stderr


def test_unknown_fileset_is_one_line_and_exit_1(site: Site):
    result = site.export("--fileset", "signins", "--since", "24h")
    assert result.code == 1
    assert result.error_lines() == [
        "error: --fileset: unknown fileset 'signins' of module entraid (one of signinlogs, auditlogs, provisioning, "
        "identity_protection, alerts, incidents)"]
    bad_time = site.export("--fileset", "signinlogs", "--since", "yesterday")
    assert bad_time.code == 1 and len(bad_time.error_lines()) == 1 and "--since" in bad_time.stderr


def test_missing_credentials_name_the_file_and_key(site: Site):
    unset = site.export("--fileset", "signinlogs", "--since", "24h", secret=None)
    assert unset.code == 1
    module = site.home / "modules.d" / "entraid.yml"
    # The loader reports the unset variable, and the enabled auditlogs fileset its resulting empty secret.
    assert unset.error_lines()[0] == (f"config error: {module}: 0.var.client_secret: ${{ENTRA_CLIENT_SECRET}} is not "
                                      "set in the keystore or the environment (add it with `forwarder keystore add "
                                      "ENTRA_CLIENT_SECRET` or export it)")
    assert all(line.startswith(f"config error: {module}: 0.") for line in unset.error_lines())
    site.write_module(secret_line="")  # only the shipped fileset has a secret: the exported one has none
    module.write_text(module.read_text().replace("enabled: true", 'enabled: true\n    var.client_secret: "x"'))
    missing = site.export("--fileset", "signinlogs", "--since", "24h")
    assert missing.code == 1
    assert missing.error_lines() == [f"config error: {module}: 0.signinlogs.var.client_secret: is required (or "
                                     "certificate + key for certificate credentials)"]
    assert "Traceback" not in unset.stderr + missing.stderr


def test_expired_secret_and_missing_permission_fail_in_one_line_without_the_secret(site: Site):
    site.add_sign_in(1, DAY_START + 60)
    site.graph.deny(SIGN_INS)
    denied = site.export("--fileset", "signinlogs", "--since", SINCE, "--until", UNTIL, "-o", "out.ndjson")
    assert denied.code == 1
    assert len(denied.error_lines()) == 1 and "AuditLog.Read.All" in denied.stderr
    assert not (site.home / "out.ndjson").exists() and not (site.home / "out.ndjson.partial").exists()
    site.identity.expire_secret(TENANT, CLIENT, SECRET)
    expired = site.export("--fileset", "auditlogs", "--since", "24h", "-d", "*")
    assert expired.code == 1
    assert expired.error_lines()[-1].startswith(f"error: the client secret of app {CLIENT} has expired")
    assert "AADSTS7000222" in expired.stderr
    for result in (denied, expired):
        assert SECRET not in result.stderr and SECRET.encode() not in result.stdout
    assert not (site.home / "data").exists()


def test_progress_is_redrawn_in_place_on_a_terminal(site: Site):
    for n in range(20):
        site.add_sign_in(n, DAY_START + 3600 + n)
    site.graph.fail(SIGN_INS, 429, count=1, after=1, retry_after="1")
    controller, terminal = os.openpty()
    env = {**os.environ, "ENTRA_CLIENT_SECRET": SECRET}
    try:
        process = subprocess.Popen(
            [sys.executable, "-m", "forwarder", "export", "entraid", "--path.home", str(site.home), "--fileset",
             "signinlogs", "--since", SINCE, "--until", UNTIL, "-o", "signins.ndjson"],
            cwd=site.home, env=env, stdout=subprocess.DEVNULL, stderr=terminal)
        os.close(terminal)
        shown = read_until_closed(controller)
        assert process.wait(timeout=30) == 0
    finally:
        os.close(controller)
    assert "\r\x1b[K[" in shown
    assert "signinlogs" in shown and "throttling wait" in shown
    assert shown.rstrip().splitlines()[-1].startswith("export finished: 20 records from 2 pages")


def read_until_closed(fd: int) -> str:
    chunks = []
    while True:
        try:
            chunk = os.read(fd, 4096)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks).decode(errors="replace")
