"""The microsoft module file, loaded the way the forwarder loads it: the defender_atp fileset's input and mapping."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import pytest

from forwarder.config.settings import CliOptions, Settings, load_settings
from forwarder.inputs.defender_atp import alert_events
from forwarder.schema.section import ConfigError

REPO = Path(__file__).resolve().parents[2]
TENANT = "7e9a1c3e-5a7c-4e9a-8c1e-5a7c9e1a3c57"
CLIENT = "3e5a7c9e-1a3c-4e5a-9c7e-1a3c5e7a9c68"


def load(tmp_path: Path, module_text: str) -> Settings:
    config = tmp_path / "forwarder.yml"
    config.write_text("output.file:\n  path: ${path.data}/events\n")
    os.chmod(config, 0o600)
    modules = tmp_path / "modules.d"
    modules.mkdir(exist_ok=True)
    module_file = modules / "microsoft.yml"
    module_file.write_text(textwrap.dedent(module_text))
    os.chmod(module_file, 0o600)
    return load_settings(CliOptions(config_files=[str(config)], path_home=str(tmp_path)))


def test_the_shipped_file_enabled_gives_one_defender_atp_input(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("DEFENDER_CLIENT_SECRET", "s3cret")
    settings = load(tmp_path, (REPO / "modules.d" / "microsoft.yml.disabled").read_text())
    specs = [spec for spec in settings.inputs if spec.input_type.name == "defender-atp"]
    assert len(specs) == 1
    config = specs[0].config
    assert config.api_url == "https://api.securitycenter.microsoft.com"
    assert config.scope == "https://api.securitycenter.microsoft.com/.default"
    assert config.login_endpoint == "https://login.microsoftonline.com"
    assert (config.interval, config.initial_lookback, config.split_evidence) == (300, 86400, False)
    assert (config.requests_per_minute, config.requests_per_hour, config.page_size) == (100, 1500, 10000)
    assert specs[0].client.module_fields["event"] == {"module": "microsoft", "dataset": "microsoft.defender_atp"}


def test_filebeat_variables_and_a_geo_host_load(tmp_path: Path) -> None:
    settings = load(tmp_path, f"""
        - module: microsoft
          defender_atp:
            enabled: true
            var.oauth2.client.id: "{CLIENT}"
            var.oauth2.client.secret: "s3cret"
            var.oauth2.token_url: https://login.microsoftonline.com/{TENANT}/oauth2/token
            var.api_host: eu.api.security.microsoft.com
            var.cloud: usgov
            var.split_evidence: true
        """)
    (spec,) = settings.inputs
    config = spec.config
    assert (config.tenant_id, config.client_id, config.client_secret) == (TENANT, CLIENT, "s3cret")
    assert config.api_url == "https://eu.api.security.microsoft.com"
    assert config.scope == "https://api-gov.securitycenter.microsoft.us/.default"
    assert config.login_endpoint == "https://login.microsoftonline.us"
    assert config.split_evidence is True


@pytest.mark.parametrize(("var", "expected"), [
    ("var.api_host: http://api.securitycenter.microsoft.com", "api_host: must be a host name"),
    ("var.api_host: api.securitycenter.microsoft.com/api", "api_host: must be a host name"),
    ("var.cloud: china", "cloud"),
    ("var.page_size: 20000", "page_size"),
    ("var.interval: soon", "interval"),
    ("var.split_evidnce: true", "split_evidnce"),
])
def test_a_wrong_variable_is_named_in_one_line(tmp_path: Path, var: str, expected: str) -> None:
    with pytest.raises(ConfigError) as error:
        load(tmp_path, f"""
            - module: microsoft
              var.tenant_id: "{TENANT}"
              var.client_id: "{CLIENT}"
              var.client_secret: "s3cret"
              defender_atp:
                {var}
            """)
    assert expected in str(error.value) and "microsoft.yml" in str(error.value)
    assert "s3cret" not in str(error.value)


def test_certificate_and_private_key_are_the_credential(tmp_path: Path) -> None:
    settings = load(tmp_path, f"""
        - module: microsoft
          var.tenant_id: "{TENANT}"
          var.client_id: "{CLIENT}"
          defender_atp:
            var.certificate: /etc/forwarder/app.crt
            var.private_key: /etc/forwarder/app.key
        """)
    (spec,) = settings.inputs
    assert (spec.config.certificate, spec.config.key, spec.config.client_secret) == (
        "/etc/forwarder/app.crt", "/etc/forwarder/app.key", None)


def test_the_module_mapping_of_one_event_per_evidence(tmp_path: Path) -> None:
    settings = load(tmp_path, f"""
        - module: microsoft
          var.tenant_id: "{TENANT}"
          var.client_id: "{CLIENT}"
          var.client_secret: "s3cret"
          defender_atp:
            var.split_evidence: true
            var.preserve_original_event: true
        """)
    (spec,) = settings.inputs
    alert = {"id": "da1", "lastUpdateTime": "2020-06-30T15:29:44.7733333Z", "severity": "Unspecified",
             "status": "Resolved", "evidence": [{"entityType": "Url", "url": "https://x.example/"},
                                                {"entityType": "User", "userSid": "S-1-5-21", "accountName": "bob"}]}
    events = alert_events(alert, "da1|2020-06-30T15:29:44.7733333Z", 0.0, split_evidence=True)
    mapped = []
    for event in events:
        for processor in spec.client.module_processors:
            event = processor(event)
        mapped.append(event)
    assert [event.meta["_id"] for event in mapped] == ["da1|2020-06-30T15:29:44.7733333Z|0",
                                                       "da1|2020-06-30T15:29:44.7733333Z|1"]
    first, second = (event.fields for event in mapped)
    assert first["url"] == {"full": "https://x.example/"} and "user" not in first
    assert second["user"] == {"id": "S-1-5-21"} and second["related"]["user"] == ["bob"]
    assert first["event"]["severity"] == 0 and first["event"]["type"] == ["end"]
    assert first["event"]["original"].startswith('{"id":"da1"')
    assert mapped[0].timestamp == pytest.approx(1593530984.773)


def test_normalize_false_sends_the_alert_json_for_filebeats_ingest_pipeline(tmp_path: Path) -> None:
    settings = load(tmp_path, f"""
        - module: microsoft
          var.tenant_id: "{TENANT}"
          var.client_id: "{CLIENT}"
          var.client_secret: "s3cret"
          defender_atp:
            var.normalize: false
        """)
    (spec,) = settings.inputs
    assert spec.client.ingest_pipeline.startswith("filebeat-")
    assert spec.client.ingest_pipeline.endswith("-microsoft-defender_atp-pipeline")
    assert spec.client.module_processors == []
