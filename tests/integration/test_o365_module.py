"""Filebeat users' modules.d/o365.yml and filebeat.yml, loaded by the forwarder as they are."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
import urllib.request
from pathlib import Path

import pytest
import trustme

from forwarder import __version__
from forwarder.config.settings import CliOptions, Settings, load_settings
from forwarder.inputs.o365_config import CONTENT_TYPES
from forwarder.schema.section import ConfigError
from tests.fakes.https_server import FakeHttpsServer
from tests.fakes.identity_platform import FakeIdentityPlatform
from tests.fakes.lumberjack_server import LumberjackServer
from tests.fakes.management_api import FakeManagementApi
from tests.integration.forwarder_process import ForwarderProcess, output_events, wait_until

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "fixtures" / "o365"
TENANT_A = "b3a1c2d4-5e6f-4a7b-8c9d-0e1f2a3b4c5d"
TENANT_B = "0f1e2d3c-4b5a-4697-8877-665544332211"
APPLICATION = "4e6a8c0e-2b4d-4f6a-8c0e-2b4d6f8a0c1e"
SECRET = "Qx8~s3cret.Value_from-the-portal"

FILEBEAT_YML = """\
filebeat.config.modules:
  path: ${path.config}/modules.d/*.yml
  reload.enabled: false

setup.template.settings:
  index.number_of_shards: 1

processors:
  - rename:
      fields:
        - from: "agent"
          to: "beat_agent"
      ignore_missing: true
  - rename:
      fields:
        - from: "log.file.path"
          to: "source"
      ignore_missing: true
  - add_host_metadata:
      when.not.contains.tags: forwarded

output.logstash:
  hosts: ["127.0.0.1:5044"]
"""

# The shape Elastic's o365 module documentation and SIEM vendors' setup guides print.
VENDOR_GUIDE_O365_YML = f"""\
- module: o365
  audit:
    enabled: true

    # Set the application_id (also known as client ID):
    var.application_id: "{APPLICATION}"

    # Configure the tenants to monitor:
    var.tenants:
      - id: "{TENANT_A}"
        name: "contoso.onmicrosoft.com"
      - id: "{TENANT_B}"
        name: "fabrikam.com"

    # var.content_type:
    #  - "Audit.AzureActiveDirectory"
    #  - "Audit.Exchange"

    # Client-secret based authentication:
    var.client_secret: "${{O365_CLIENT_SECRET}}"

    # Advanced settings, use with care:
    var.api:
    #   authentication_endpoint: "https://login.microsoftonline.us/"
    #   resource: "https://manage.office365.us"
      max_retention: 96h
    #   max_requests_per_minute: 2000
      poll_interval: 1m
"""


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    os.chmod(path, 0o600)
    return path


def setup_home(home: Path, module_text: str) -> Path:
    write(home / "modules.d" / "o365.yml", module_text)
    return write(home / "filebeat.yml", FILEBEAT_YML)


def load(home: Path, module_text: str) -> Settings:
    config = setup_home(home, module_text)
    return load_settings(CliOptions(config_files=[str(config)], path_home=str(home)))


def problems_of(home: Path, module_text: str) -> list[str]:
    with pytest.raises(ConfigError) as raised:
        load(home, module_text)
    return [str(problem) for problem in raised.value.problems]


def forwarder(*args: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    environment = {key: value for key, value in os.environ.items() if key != "O365_CLIENT_SECRET"}
    return subprocess.run([sys.executable, "-m", "forwarder", *args], check=False, cwd=cwd, capture_output=True,
                          text=True, timeout=60, env={**environment, **env})


@pytest.fixture(autouse=True)
def client_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("O365_CLIENT_SECRET", SECRET)


def test_vendor_guide_files_become_one_o365audit_input(tmp_path: Path) -> None:
    settings = load(tmp_path, VENDOR_GUIDE_O365_YML)
    assert len(settings.inputs) == 1
    spec = settings.inputs[0]
    assert spec.input_type.name == "o365audit"
    assert spec.client.input_type == "o365audit"
    assert spec.client.input_id == "o365-audit"
    assert spec.client.module_fields == {
        "event": {"module": "o365", "dataset": "o365.audit"},
        "fileset": {"name": "audit"},
        "service": {"type": "o365"},
    }
    assert spec.client.tags == ["forwarded"]
    assert spec.client.ingest_pipeline is None
    config = spec.config
    assert (config.application_id, config.client_secret) == (APPLICATION, SECRET)
    assert config.tenant_ids == [TENANT_A, TENANT_B]
    assert config.tenant_names == {TENANT_A: "contoso.onmicrosoft.com", TENANT_B: "fabrikam.com"}
    assert config.content_types == list(CONTENT_TYPES)
    assert (config.max_retention, config.poll_interval, config.max_query_size) == (96 * 3600, 60, 86400)
    assert config.resource == "https://manage.office.com"
    assert config.normalize is True


def test_vendor_guide_files_pass_test_config_unchanged(tmp_path: Path) -> None:
    config = setup_home(tmp_path, VENDOR_GUIDE_O365_YML)
    result = forwarder("test", "config", "-c", str(config), "--path.home", str(tmp_path), cwd=tmp_path,
                       env={"O365_CLIENT_SECRET": SECRET})
    assert (result.returncode, result.stdout.strip()) == (0, "Config OK"), result.stderr


def test_every_variable_reaches_the_input(tmp_path: Path) -> None:
    text = f"""\
- module: o365
  var.application_id: "{APPLICATION}"
  audit:
    var.tenants: [{{id: "{TENANT_A}"}}]
    var.certificate: /etc/forwarder/o365.crt
    var.key: /etc/forwarder/o365.key
    var.key_passphrase: "pem-pass"
    var.content_type: Audit.Exchange
    var.api.authentication_endpoint: login.microsoftonline.us/
    var.api.resource: https://manage.office365.us
    var.api.max_retention: 48h
    var.api.max_query_size: 6h
    var.api.poll_interval: 30s
    var.api.max_requests_per_minute: 600
    var.api.error_retry_interval: 2m
    var.api.adjust_clock: false
    var.api.adjust_clock_min_difference: 10m
    var.api.adjust_clock_warn: false
    var.api.set_id_from_audit_record: false
    var.api.preserve_original_event: true
    var.ssl.certificate_authorities: [/etc/forwarder/corporate-ca.pem]
    var.proxy_url: http://proxy.example.test:3128
    var.normalize: false
    var.tags: [o365, forwarded]
    var.input: o365audit
    input:
      fields: {{site: hq}}
"""
    spec = load(tmp_path, text).inputs[0]
    config = spec.config
    assert config.application_id == APPLICATION  # a module-level variable
    assert (config.tenant_ids, config.tenant_names) == ([TENANT_A], {})
    assert (config.client_secret, config.certificate, config.key, config.key_passphrase) == (
        None, "/etc/forwarder/o365.crt", "/etc/forwarder/o365.key", "pem-pass")
    assert config.content_types == ["Audit.Exchange"]
    assert config.authentication_endpoint == "https://login.microsoftonline.us"
    assert config.resource == "https://manage.office365.us"
    assert (config.max_retention, config.max_query_size, config.poll_interval) == (48 * 3600, 6 * 3600, 30)
    assert (config.max_requests_per_minute, config.error_retry_interval) == (600, 120)
    assert (config.adjust_clock, config.adjust_clock_min_difference, config.adjust_clock_warn) == (False, 600, False)
    assert (config.set_id_from_audit_record, config.preserve_original_event) == (False, True)
    assert config.ca_bundle == "/etc/forwarder/corporate-ca.pem"
    assert config.proxy_url == "http://proxy.example.test:3128"
    assert config.normalize is False
    assert spec.client.ingest_pipeline == f"filebeat-{__version__}-o365-audit-pipeline"
    assert spec.client.tags == ["o365", "forwarded"]
    assert spec.client.fields == {"site": "hq"}


def test_a_disabled_fileset_makes_no_input(tmp_path: Path) -> None:
    text = VENDOR_GUIDE_O365_YML.replace("enabled: true", "enabled: false")
    assert load(tmp_path, text).inputs == []


def module_file(home: Path) -> str:
    return str(home / "modules.d" / "o365.yml")


@pytest.mark.parametrize(("change", "key", "words"), [
    (("var.application_id:", "var.aplication_id:"), "0.audit.var.aplication_id",
     "unknown setting (did you mean '0.audit.var.application_id'?)"),
    (("      poll_interval: 1m", "      poll_intervall: 1m"), "0.audit.var.api.poll_intervall",
     "did you mean '0.audit.var.api.poll_interval'"),
    (("      poll_interval: 1m", "      poll_interval: often"), "0.audit.var.api.poll_interval", "not a duration"),
    (('var.client_secret: "${O365_CLIENT_SECRET}"', "#"), "0.audit.var.client_secret", "is required"),
    (('var.client_secret: "${O365_CLIENT_SECRET}"',
      'var.client_secret: "${O365_CLIENT_SECRET}"\n    var.certificate: /etc/o365.crt\n    var.key: /etc/o365.key'),
     "0.audit.var.client_secret", "not both"),
    (('var.client_secret: "${O365_CLIENT_SECRET}"', "var.certificate: /etc/o365.crt"), "0.audit.var.key",
     "certificate credentials need both"),
    (("var.api:", "var.input: file\n    var.api:"), "0.audit.var.input", "only 'o365audit' is supported"),
    (("var.api:", "var.content_type: Audit.Everything\n    var.api:"), "0.audit.var.content_type",
     "unknown content type 'Audit.Everything'"),
])
def test_a_mistake_is_one_line_naming_the_file_and_key(tmp_path: Path, change: tuple[str, str], key: str,
                                                       words: str) -> None:
    problems = problems_of(tmp_path, VENDOR_GUIDE_O365_YML.replace(*change))
    named = [problem for problem in problems if problem.startswith(f"{module_file(tmp_path)}: {key}: ")]
    assert len(named) == 1, problems
    assert words in named[0]
    assert all("\n" not in problem and SECRET not in problem for problem in problems)
    if key.endswith("aplication_id"):  # the misspelt name, then the consequence
        assert len(problems) == 2 and any(problem.endswith(
            "0.audit.var.application_id: is required: the app registration's Application (client) ID")
            for problem in problems), problems
    else:
        assert len(problems) == 1, problems


TENANTS_BLOCK = f"""\
    var.tenants:
      - id: "{TENANT_A}"
        name: "contoso.onmicrosoft.com"
      - id: "{TENANT_B}"
        name: "fabrikam.com"
"""


@pytest.mark.parametrize(("tenants", "key", "words"), [
    ("", "0.audit.var.tenants", "is required"),
    (f'    var.tenants: "{TENANT_A}"\n', "0.audit.var.tenants", "expected a list of tenants"),
    (f'    var.tenants: {{id: "{TENANT_A}", name: contoso.com}}\n', "0.audit.var.tenants", "expected a list"),
    ("    var.tenants: []\n", "0.audit.var.tenants", "expected a list of tenants"),
    (f'    var.tenants: ["{TENANT_A}"]\n', "0.audit.var.tenants.0", "each with an id and a name"),
    ("    var.tenants:\n      - name: contoso.com\n", "0.audit.var.tenants.0.id", "is required"),
    (f'    var.tenants:\n      - tenant_id: "{TENANT_A}"\n', "0.audit.var.tenants.0.tenant_id",
     "unknown setting"),
    (f'    var.tenants:\n      - {{id: "{TENANT_A}"}}\n      - {{id: "{TENANT_A}"}}\n', "0.audit.var.tenants.1.id",
     "listed twice"),
])
def test_a_bad_tenant_list_is_reported_against_var_tenants(tmp_path: Path, tenants: str, key: str,
                                                           words: str) -> None:
    text = VENDOR_GUIDE_O365_YML.replace(TENANTS_BLOCK, tenants)
    assert text != VENDOR_GUIDE_O365_YML
    problems = problems_of(tmp_path, text)
    assert any(problem.startswith(f"{module_file(tmp_path)}: {key}: ") and words in problem
               for problem in problems), problems
    assert not any("tenant_id" in problem and "tenants" not in problem for problem in problems), problems


def test_test_config_prints_the_problem_without_a_traceback_or_the_secret(tmp_path: Path) -> None:
    text = VENDOR_GUIDE_O365_YML.replace("var.application_id:", "var.aplication_id:")
    config = setup_home(tmp_path, text)
    result = forwarder("test", "config", "-c", str(config), "--path.home", str(tmp_path), cwd=tmp_path,
                       env={"O365_CLIENT_SECRET": SECRET})
    assert result.returncode == 1
    assert f"{module_file(tmp_path)}: 0.audit.var.aplication_id: unknown setting" in result.stderr
    assert "Traceback" not in result.stderr and SECRET not in result.stderr + result.stdout


def test_shipped_file_is_listed_enabled_and_loads_with_the_secret_from_the_environment(tmp_path: Path) -> None:
    write(tmp_path / "forwarder.yml", "output.file:\n  path: ${path.data}/events\n")
    modules = tmp_path / "modules.d"
    modules.mkdir()
    shutil.copy(REPO / "modules.d" / "o365.yml.disabled", modules / "o365.yml.disabled")
    os.chmod(modules / "o365.yml.disabled", 0o600)

    listing = forwarder("modules", "list", cwd=tmp_path, env={})
    assert listing.stdout.split() == ["Enabled:", "Disabled:", "o365"], listing.stdout
    assert forwarder("modules", "enable", "o365", cwd=tmp_path, env={}).returncode == 0
    assert (modules / "o365.yml").exists() and not (modules / "o365.yml.disabled").exists()

    unset = forwarder("test", "config", cwd=tmp_path, env={})
    assert unset.returncode == 1
    assert "${O365_CLIENT_SECRET} is not set" in unset.stderr and "Traceback" not in unset.stderr
    result = forwarder("test", "config", cwd=tmp_path, env={"O365_CLIENT_SECRET": SECRET})
    assert (result.returncode, result.stdout.strip()) == (0, "Config OK"), result.stderr

    spec = load_settings(CliOptions(config_files=[str(tmp_path / "forwarder.yml")], path_home=str(tmp_path))).inputs[0]
    assert spec.config.client_secret == SECRET
    assert spec.config.tenant_names == {"00000000-0000-0000-0000-000000000000": "contoso.onmicrosoft.com"}
    assert spec.config.content_types == list(CONTENT_TYPES)
    assert spec.client.tags == ["forwarded"]


def test_shipped_file_documents_every_variable_the_module_reads() -> None:
    from forwarder.modules.o365 import NESTED_VARS, PLAIN_VARS

    text = (REPO / "modules.d" / "o365.yml.disabled").read_text()
    for name in PLAIN_VARS:
        assert f"var.{name}" in text, name
    for group, names in NESTED_VARS.items():
        for name in names:
            assert f"var.{group}.{name}" in text, name
    assert textwrap.dedent(text).count("- module: o365") == 1


def module_for_fake_api(server: FakeHttpsServer) -> str:
    """The vendor guide's module file, reading tenant A's Azure AD content from the fake Management API."""
    return VENDOR_GUIDE_O365_YML.replace(TENANTS_BLOCK, f"""\
    var.tenants:
      - id: "{TENANT_A}"
        name: "contoso.onmicrosoft.com"
    var.content_type: Audit.AzureActiveDirectory
    var.ssl.certificate_authorities: ["{server.ca_path}"]
""").replace("      max_retention: 96h", f"""\
      authentication_endpoint: "{server.url}"
      resource: "{server.url}"
      max_retention: 2h""")


def test_vendor_guide_files_ship_normalized_events_to_logstash(tmp_path: Path) -> None:
    """Through the real process: fake Management API (real MSAL tokens) → o365audit input → module → Lumberjack."""
    records = [json.loads(path.read_text()) for path in sorted(FIXTURES.glob("aad_sts_logon_*.json"))]
    ca = trustme.CA()
    with FakeHttpsServer(ca) as server, LumberjackServer() as logstash:
        identity = FakeIdentityPlatform(server)
        identity.register_app(TENANT_A, APPLICATION, secret=SECRET)
        api = FakeManagementApi(server, identity)
        api.add_tenant(TENANT_A)
        api.add_blob(TENANT_A, "Audit.AzureActiveDirectory", records, age=600)
        write(tmp_path / "modules.d" / "o365.yml", module_for_fake_api(server))
        process = ForwarderProcess(tmp_path, FILEBEAT_YML.replace("127.0.0.1:5044", logstash.address))
        process.config_path.rename(tmp_path / "filebeat.yml")
        process.config_path = tmp_path / "filebeat.yml"
        process.start()
        try:
            events = logstash.wait_for_events(2, timeout=60)
            assert process.terminate() == 0
        finally:
            process.stop()
        log_text = (tmp_path / "stderr.log").read_text()
    assert SECRET not in log_text
    assert api.tenants[TENANT_A].starts == 1  # the missing subscription was started
    by_id = {event["@metadata"]["_id"]: event for event in events}
    assert sorted(by_id) == sorted(record["Id"] for record in records)
    failed = by_id["3f6b8e0a-52c4-4f0e-9a4e-1b2f6c8d7e01"]
    assert failed["@timestamp"] == "2024-03-11T08:14:52.000Z"
    assert failed["event"]["module"] == "o365" and failed["event"]["dataset"] == "o365.audit"
    assert failed["event"]["outcome"] == "failure" and failed["event"]["code"] == "AzureActiveDirectoryStsLogon"
    assert failed["fileset"] == {"name": "audit"} and failed["service"] == {"type": "o365"}
    assert failed["input"] == {"type": "o365audit"}
    assert failed["tags"] == ["forwarded"]
    assert failed["organization"]["name"] == "contoso.onmicrosoft.com"
    # The tenant names the host; the `forwarded` tag kept this collector's host metadata out.
    assert failed["host"] == {"id": TENANT_A, "name": "contoso.onmicrosoft.com"}
    assert failed["source"]["ip"] == "203.0.113.45"
    assert failed["o365"]["audit"] == records[0]
    assert json.loads(failed["message"]) == records[0]
    assert "agent" not in failed and failed["beat_agent"]["type"] == "filebeat"
    assert failed["@metadata"]["beat"] == "filebeat"


def stats_of(process: ForwarderProcess) -> dict:
    listening = process.wait_for_log("monitoring endpoint listening")["message"]
    url = re.search(r"http://\S+/stats", listening).group(0)
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.loads(response.read())


def test_a_record_the_mapping_cannot_handle_is_forwarded_raw_tagged_counted_and_logged_once(tmp_path: Path) -> None:
    """Through the real process: the module's o365_ecs processor fails on two records of a blob (a RecordType
    too long to read as a number); they are shipped as the input read them, and the records after them flow."""
    good = [json.loads(path.read_text()) for path in sorted(FIXTURES.glob("aad_sts_logon_*.json"))]
    unreadable_type = "9" * 5000
    bad = [{**record, "Id": f"bad-{record['Id']}", "RecordType": unreadable_type} for record in good]
    ca = trustme.CA()
    with FakeHttpsServer(ca) as server:
        identity = FakeIdentityPlatform(server)
        identity.register_app(TENANT_A, APPLICATION, secret=SECRET)
        api = FakeManagementApi(server, identity)
        api.add_tenant(TENANT_A)
        api.add_blob(TENANT_A, "Audit.AzureActiveDirectory", [bad[0], good[0], bad[1], good[1]], age=600)
        write(tmp_path / "modules.d" / "o365.yml", module_for_fake_api(server))
        process = ForwarderProcess(tmp_path, """
            filebeat.config.modules:
              path: ${path.config}/modules.d/*.yml
            output.file:
              path: ${path.data}/events
            http.enabled: true
            http.host: 127.0.0.1
            http.port: 0
            logging.metrics.enabled: false
            """)
        process.start()
        try:
            events = wait_until(lambda: len(output_events(tmp_path)) >= 4 and output_events(tmp_path), 60,
                                "the four records of the blob")
            stats = wait_until(lambda: stats_of(process)["inputs"]["o365-audit"].get("mapping_failures") == 2
                               and stats_of(process), 30, "mapping_failures in /stats")
            assert process.terminate() == 0
        finally:
            process.stop()
    assert api.tenants[TENANT_A].blobs[0].fetches == 1  # shipped, never retried
    by_id = {event["@metadata"]["_id"]: event for event in events}
    assert sorted(by_id) == sorted(record["Id"] for record in bad + good)
    for record, twin in zip(bad, good, strict=True):
        failed = by_id[record["Id"]]
        assert json.loads(failed["message"]) == record
        assert failed["tags"] == ["_parse_failure", "forwarded"]
        assert failed["error"]["message"].startswith("cannot map the record to ECS (o365_ecs): ValueError: ")
        assert "o365" not in failed and "organization" not in failed
        assert failed["event"] == {"module": "o365", "dataset": "o365.audit"}
        assert failed["@timestamp"] == by_id[twin["Id"]]["@timestamp"]  # the input's CreationTime
    for record in good:
        mapped = by_id[record["Id"]]
        assert mapped["o365"]["audit"] == record and mapped["tags"] == ["forwarded"] and "error" not in mapped
        assert mapped["organization"]["name"] == "contoso.onmicrosoft.com"
    assert stats["inputs"]["o365-audit"]["mapping_failures"] == 2
    logged = [line for line in process.log_lines()
              if "o365_ecs" in line.get("message", "") and "ValueError" in line.get("message", "")]
    assert len(logged) == 1 and logged[0]["log.level"] == "WARNING"


def test_a_record_with_an_integer_beyond_64_bits_is_delivered_and_the_records_after_it_flow(tmp_path: Path) -> None:
    """orjson refuses such integers: the input and the output must not turn that into a retry loop."""
    good = [json.loads(path.read_text()) for path in sorted(FIXTURES.glob("aad_sts_logon_*.json"))]
    huge = 123456789012345678901234567890
    wide = {**good[0], "Id": f"wide-{good[0]['Id']}", "ObjectCount": huge}
    ca = trustme.CA()
    with FakeHttpsServer(ca) as server:
        identity = FakeIdentityPlatform(server)
        identity.register_app(TENANT_A, APPLICATION, secret=SECRET)
        api = FakeManagementApi(server, identity)
        api.add_tenant(TENANT_A)
        api.add_blob(TENANT_A, "Audit.AzureActiveDirectory", [wide, good[1]], age=600)
        write(tmp_path / "modules.d" / "o365.yml", module_for_fake_api(server))
        process = ForwarderProcess(tmp_path, """
            filebeat.config.modules:
              path: ${path.config}/modules.d/*.yml
            output.file:
              path: ${path.data}/events
            logging.metrics.enabled: false
            """)
        process.start()
        try:
            events = wait_until(lambda: len(output_events(tmp_path)) >= 2 and output_events(tmp_path), 60,
                                "both records of the blob")
            assert process.terminate() == 0
        finally:
            process.stop()
    assert api.tenants[TENANT_A].blobs[0].fetches == 1
    by_id = {event["@metadata"]["_id"]: event for event in events}
    assert sorted(by_id) == sorted([wide["Id"], good[1]["Id"]])
    # Exact where the decoder keeps big integers (requests' fallback); orjson before 3.9 reads them as floats.
    assert json.loads(by_id[wide["Id"]]["message"])["ObjectCount"] == pytest.approx(huge)
