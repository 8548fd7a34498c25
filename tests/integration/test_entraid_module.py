"""The entraid module file, loaded the way the forwarder loads it: one graph input per enabled fileset."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path
from typing import Any

import pytest

from forwarder.config.inputs import InputSpec
from forwarder.config.settings import CliOptions, Settings, load_settings
from forwarder.inputs.graph import record_event
from forwarder.inputs.graph_config import streams
from forwarder.schema.section import ConfigError

REPO = Path(__file__).resolve().parents[2]
MAIN_CONFIG = "output.file:\n  path: ${path.data}/events\n"
TENANT = "5d7f9b1c-3e5a-4c7e-9b1d-3f5a7c9e1b43"
CLIENT = "1c3e5a7c-9e1b-4d3f-8a5c-7e9a1c3e5b54"


def load(tmp_path: Path, module_text: str) -> Settings:
    config = tmp_path / "forwarder.yml"
    config.write_text(MAIN_CONFIG)
    os.chmod(config, 0o600)
    modules = tmp_path / "modules.d"
    modules.mkdir(exist_ok=True)
    module_file = modules / "entraid.yml"
    module_file.write_text(textwrap.dedent(module_text))
    os.chmod(module_file, 0o600)
    return load_settings(CliOptions(config_files=[str(config)], path_home=str(tmp_path)))


def module_mapping(spec: InputSpec, record: dict[str, Any], stream: str) -> dict[str, Any]:
    """The fields the fileset's processors make of one record, as the pipeline runs them first."""
    event = record_event(record, stream, str(record["id"]), 0.0)
    for processor in spec.client.module_processors:
        event = processor(event)
    return event.fields


SIGN_IN = {"id": "s-1", "createdDateTime": "2024-05-01T10:00:00Z", "ipAddress": "203.0.113.7"}
AUDIT = {"id": "a-1", "activityDateTime": "2024-05-01T10:00:00Z", "activityDisplayName": "Add member to group"}
RISK = {"id": "r-1", "detectedDateTime": "2024-05-01T10:00:00Z", "lastUpdatedDateTime": "2024-05-01T10:00:00Z"}


VENDOR_GUIDE = f"""\
    # Entra ID through Microsoft Graph, as the setup guide shows it.
    - module: entraid
      var.tenant_id: "{TENANT}"
      var.application_id: "{CLIENT}"
      var.client_secret: "s3cret-value"
      var.poll_interval: 5m
      var.api.graph_endpoint: https://graph.example.test
      signinlogs:
        enabled: true
        var.sign_in_types: [interactiveUser, servicePrincipal]
        var.page_size: 250
      auditlogs:
        enabled: true
        var:
          poll_interval: 30s
          normalize: false
      provisioning:
        enabled: false
      identity_protection:
        enabled: true
        var.preserve_original_event: true
      alerts:
        enabled: true
        input:
          tags: [defender]
"""


def test_vendor_guide_file_becomes_one_graph_input_per_enabled_fileset(tmp_path: Path) -> None:
    settings = load(tmp_path, VENDOR_GUIDE)
    inputs = {spec.client.input_id: spec for spec in settings.inputs}
    assert sorted(inputs) == ["entraid-alerts", "entraid-auditlogs", "entraid-identity_protection",
                              "entraid-signinlogs"]
    assert {spec.input_type.name for spec in inputs.values()} == {"graph"}

    signins = inputs["entraid-signinlogs"]
    assert signins.client.module_fields == {
        "event": {"module": "entraid", "dataset": "entraid.signinlogs"},
        "fileset": {"name": "signinlogs"},
        "service": {"type": "entraid"},
    }
    assert signins.client.ingest_pipeline is None
    assert signins.client.input_type == "graph"
    config = signins.config
    assert (config.tenant_id, config.client_id, config.client_secret) == (TENANT, CLIENT, "s3cret-value")
    assert streams(config) == ["signinlogs"]
    assert config.sign_in_types == ["interactiveUser", "servicePrincipal"]
    assert config.page_size == 250
    assert config.poll_interval == 300
    assert config.graph_endpoint == "https://graph.example.test"
    assert config.login_endpoint == "https://login.microsoftonline.com"
    signin_fields = module_mapping(signins, SIGN_IN, "signinlogs")
    assert signin_fields["source"]["ip"] == "203.0.113.7" and "original" not in signin_fields["event"]

    audit = inputs["entraid-auditlogs"]
    assert audit.config.poll_interval == 30
    assert list(module_mapping(audit, AUDIT, "auditlogs")) == ["message"], "normalize: false maps nothing"
    pipeline = audit.client.ingest_pipeline
    assert pipeline.startswith("filebeat-") and pipeline.endswith("-entraid-auditlogs-pipeline")
    assert audit.client.module_fields["event"]["dataset"] == "entraid.auditlogs"

    protection = inputs["entraid-identity_protection"]
    assert streams(protection.config) == ["risk_detection", "risky_user"]
    protection_fields = module_mapping(protection, RISK, "risk_detection")
    assert protection_fields["event"]["original"] == protection_fields["message"]
    assert protection_fields["cloud"]["provider"] == "Azure"
    assert protection.config.poll_interval == 300

    alerts = inputs["entraid-alerts"]
    assert streams(alerts.config) == ["alert"]
    assert alerts.client.tags == ["defender"]


def test_unknown_variable_is_reported_with_the_file_and_key(tmp_path: Path) -> None:
    text = VENDOR_GUIDE.replace("var.poll_interval: 5m", "var.pol_interval: 5m").replace(
        "var.page_size: 250", "var.page_size: many"
    )
    with pytest.raises(ConfigError) as raised:
        load(tmp_path, text)
    problems = [str(problem) for problem in raised.value.problems]
    module_file = str(tmp_path / "modules.d" / "entraid.yml")
    assert any(p.startswith(module_file) and "0.var.pol_interval: unknown setting" in p
               and "poll_interval" in p for p in problems), problems
    assert any(p.startswith(module_file) and "page_size" in p for p in problems), problems


def test_missing_credentials_are_reported_for_the_fileset(tmp_path: Path) -> None:
    text = f"""\
        - module: entraid
          var.tenant_id: "{TENANT}"
          var.client_id: "{CLIENT}"
          auditlogs.enabled: true
    """
    with pytest.raises(ConfigError) as raised:
        load(tmp_path, text)
    [problem] = [str(p) for p in raised.value.problems]
    assert "entraid.yml" in problem and "auditlogs" in problem and "client_secret: is required" in problem


def test_shipped_module_file_loads_once_enabled(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENTRA_CLIENT_SECRET", "from-the-environment")
    shipped = (REPO / "modules.d" / "entraid.yml.disabled").read_text()
    settings = load(tmp_path, shipped)
    inputs = {spec.client.input_id: spec for spec in settings.inputs}
    assert sorted(inputs) == sorted(f"entraid-{name}" for name in (
        "signinlogs", "auditlogs", "provisioning", "identity_protection", "alerts", "incidents"))
    assert all(spec.config.client_secret for spec in inputs.values())
    assert streams(inputs["entraid-identity_protection"].config) == ["risk_detection", "risky_user"]
    assert streams(inputs["entraid-incidents"].config) == ["incident"]


def test_shipped_module_file_takes_the_secret_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ENTRA_CLIENT_SECRET", "from-the-environment")
    settings = load(tmp_path, (REPO / "modules.d" / "entraid.yml.disabled").read_text())
    assert {spec.config.client_secret for spec in settings.inputs} == {"from-the-environment"}
    assert "from-the-environment" in settings.secrets, "a module file's secret is redacted from the log too"


def test_a_missing_variable_in_a_module_file_names_the_file_and_key(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ENTRA_CLIENT_SECRET", raising=False)
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, (REPO / "modules.d" / "entraid.yml.disabled").read_text())
    assert any("entraid.yml" in str(p) and "client_secret" in str(p) and "${ENTRA_CLIENT_SECRET} is not set" in str(p)
               for p in caught.value.problems), caught.value.problems
