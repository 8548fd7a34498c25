"""Filebeat's command-line habits through the real `forwarder` command: --modules, -M, export config."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import trustme
import yaml

from tests.fakes.https_server import FakeHttpsServer
from tests.fakes.identity_platform import FakeIdentityPlatform
from tests.fakes.lumberjack_server import LumberjackServer
from tests.fakes.management_api import FakeManagementApi
from tests.integration.forwarder_process import ForwarderProcess
from tests.integration.test_o365_module import (
    APPLICATION,
    FILEBEAT_YML,
    FIXTURES,
    SECRET,
    TENANT_A,
    VENDOR_GUIDE_O365_YML,
    write,
)


def forwarder(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "forwarder", *args], check=False, cwd=cwd, capture_output=True,
                          text=True, timeout=60, env={**os.environ, **(env or {})})


def test_modules_flag_and_module_overrides_run_a_disabled_module_against_the_given_endpoints(tmp_path, monkeypatch):
    """`--modules o365` runs modules.d/o365.yml.disabled for this run; `-M` points it at the fake API."""
    monkeypatch.setenv("O365_CLIENT_SECRET", SECRET)
    records = [json.loads(path.read_text()) for path in sorted(FIXTURES.glob("aad_sts_logon_*.json"))]
    disabled = write(tmp_path / "modules.d" / "o365.yml.disabled", VENDOR_GUIDE_O365_YML)
    ca = trustme.CA()
    with FakeHttpsServer(ca) as server, LumberjackServer() as logstash:
        identity = FakeIdentityPlatform(server)
        identity.register_app(TENANT_A, APPLICATION, secret=SECRET)
        api = FakeManagementApi(server, identity)
        api.add_tenant(TENANT_A)
        api.add_blob(TENANT_A, "Audit.AzureActiveDirectory", records, age=600)
        process = ForwarderProcess(tmp_path, FILEBEAT_YML.replace("127.0.0.1:5044", logstash.address))
        process.start(
            "--modules", "o365",
            "-M", f"o365.audit.var.tenants=[{{id: {TENANT_A}, name: contoso.onmicrosoft.com}}]",
            "-M", "o365.audit.var.content_type=Audit.AzureActiveDirectory",
            "-M", f"o365.audit.var.api.authentication_endpoint={server.url}",
            "-M", f"o365.audit.var.api.resource={server.url}",
            "-M", "o365.audit.var.api.max_retention=2h",
            "-M", f"o365.audit.var.ssl.certificate_authorities=[{server.ca_path}]",
        )
        try:
            events = logstash.wait_for_events(len(records), timeout=60)
            assert process.terminate() == 0
        finally:
            process.stop()
    assert sorted(event["@metadata"]["_id"] for event in events) == sorted(record["Id"] for record in records)
    assert {event["event"]["dataset"] for event in events} == {"o365.audit"}
    assert disabled.exists() and not (tmp_path / "modules.d" / "o365.yml").exists()  # nothing was renamed


def test_modules_flag_naming_a_module_without_a_file_is_one_line(tmp_path):
    write(tmp_path / "forwarder.yml", "output.console: {}\n")
    (tmp_path / "modules.d").mkdir()
    result = forwarder("test", "config", "--path.home", str(tmp_path), "--modules", "nope", cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        f"config error: --modules: nope: no module file nope.yml or nope.yml.disabled in {tmp_path / 'modules.d'} "
        "(see `forwarder modules list`)"]


def test_an_override_for_a_module_that_does_not_run_is_said_once(tmp_path):
    write(tmp_path / "forwarder.yml", "output.console: {}\nforwarder.inputs: [{type: syslog, "
                                      "protocol.udp.host: '127.0.0.1:0'}]\n")
    result = forwarder("test", "config", "--path.home", str(tmp_path), "-M", "o365.audit.var.api.poll_interval=1m",
                       "-M", "broken-without-a-key", cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        "config error: -M: broken-without-a-key: expected MODULE.FILESET.var.NAME=VALUE (or MODULE.var.NAME=VALUE)"]
    result = forwarder("test", "config", "--path.home", str(tmp_path), "-M", "o365.audit.var.api.poll_interval=1m",
                       cwd=tmp_path)
    assert (result.returncode, result.stdout) == (0, "Config OK\n")
    assert result.stderr.splitlines() == [
        "warning: -M o365.audit.var.api.poll_interval: module o365 does not run (enable it in modules.d or name it "
        "in --modules); the override has no effect"]


@pytest.mark.parametrize("position", ["before", "after"])
def test_export_config_prints_the_effective_config_with_secrets_masked(tmp_path, position):
    write(tmp_path / "filebeat.yml", """\
filebeat.inputs:
- type: filestream
  id: app
  paths: ["${LOG_DIR}/*.log"]
output.logstash:
  hosts: ["logstash.example.com:5044"]
  ssl.key_passphrase: "${PEM_PASSPHRASE}"
  proxy_url: "socks5://user:${PROXY_PASSWORD}@proxy.example.com:1080"
setup.kibana.password: kibana-Pa55
""")
    subprocess.run([sys.executable, "-m", "forwarder", "keystore", "add", "PROXY_PASSWORD", "--stdin",
                    "--path.home", str(tmp_path), "-c", "filebeat.yml"], input="pr0xy-Secret", text=True,
                   cwd=tmp_path, check=True, capture_output=True, timeout=60)
    flags = ["-c", "filebeat.yml", "--path.home", str(tmp_path), "-E", "name=collector-7"]
    args = [*flags, "export", "config"] if position == "before" else ["export", "config", *flags]
    result = forwarder(*args, cwd=tmp_path, env={"LOG_DIR": "/var/log/app", "PEM_PASSPHRASE": "pem-Pa55phrase"})
    assert result.returncode == 0, result.stderr
    for secret in ("pr0xy-Secret", "pem-Pa55phrase", "kibana-Pa55"):
        assert secret not in result.stdout
    config = yaml.safe_load(result.stdout)
    assert config["forwarder"]["inputs"][0]["paths"] == ["/var/log/app/*.log"]
    assert config["name"] == "collector-7"
    logstash = config["output"]["logstash"]
    assert logstash["hosts"] == ["logstash.example.com:5044"]
    assert logstash["ssl"]["key_passphrase"] == "[REDACTED]"
    assert logstash["proxy_url"] == "socks5://user:[REDACTED]@proxy.example.com:1080"
    assert config["setup"]["kibana"]["password"] == "[REDACTED]"


def test_export_config_of_a_broken_config_is_one_line(tmp_path):
    write(tmp_path / "forwarder.yml", "output.logstash.hosts: ['${MISSING_HOST}']\n")
    result = forwarder("export", "config", "--path.home", str(tmp_path), cwd=tmp_path)
    assert result.returncode == 1
    assert result.stdout == ""
    assert len(result.stderr.splitlines()) == 1 and "${MISSING_HOST} is not set" in result.stderr


def test_export_config_masks_passwords_written_in_urls_and_cloud_auth(tmp_path):
    write(tmp_path / "filebeat.yml", """\
filebeat.inputs:
- type: filestream
  id: app
  paths: ["/var/log/app/*.log"]
output.logstash:
  hosts: ["logstash.example.com:5044"]
  proxy_url: "http://proxy-user:literal-Pr0xy@proxy.example.com:3128"
cloud.auth: "elastic:cl0ud-Pass"
""")
    result = forwarder("-c", "filebeat.yml", "--path.home", str(tmp_path), "export", "config", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "literal-Pr0xy" not in result.stdout and "cl0ud-Pass" not in result.stdout
    config = yaml.safe_load(result.stdout)
    assert config["output"]["logstash"]["proxy_url"] == "http://proxy-user:[REDACTED]@proxy.example.com:3128"
    assert config["cloud"]["auth"] == "[REDACTED]"


def test_a_malformed_override_names_its_key_never_its_value(tmp_path):
    write(tmp_path / "forwarder.yml", "output.console: {}\nforwarder.inputs: [{type: syslog, "
                                      "protocol.udp.host: '127.0.0.1:0'}]\n")
    result = forwarder("test", "config", "--path.home", str(tmp_path), "-M", "o365client_secret=S3cret-Value",
                       cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        "config error: -M: o365client_secret: expected MODULE.FILESET.var.NAME=VALUE (or MODULE.var.NAME=VALUE)"]
