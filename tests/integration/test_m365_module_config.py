"""The m365_defender filesets loaded the way the forwarder loads module files, and the Graph poller merge rules."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import pytest

from forwarder.config.settings import CliOptions, Settings, load_settings
from forwarder.inputs.graph_config import streams
from forwarder.schema.section import ConfigError

TENANT = "8c1e3a5c-7e9a-4b1d-8f3a-5c7e9a1b3d65"
CLIENT = "4e6a8c0e-2a4c-4e6a-9c0e-2a4c6e8a0c27"
CONNECTION = "Endpoint=sb://contoso.servicebus.windows.net/;SharedAccessKeyName=r;SharedAccessKey=c2VjcmV0"


def load(tmp_path: Path, modules: dict[str, str], main: str = "") -> Settings:
    config = tmp_path / "forwarder.yml"
    config.write_text("output.file:\n  path: ${path.data}/events\n" + textwrap.dedent(main))
    os.chmod(config, 0o600)
    (tmp_path / "modules.d").mkdir(exist_ok=True)
    for name, text in modules.items():
        path = tmp_path / "modules.d" / f"{name}.yml"
        path.write_text(textwrap.dedent(text))
        os.chmod(path, 0o600)
    return load_settings(CliOptions(config_files=[str(config)], path_home=str(tmp_path)))


def test_filebeat_style_m365_defender_gets_two_streams_with_its_defaults(tmp_path: Path) -> None:
    settings = load(tmp_path, {"microsoft": f"""\
        - module: microsoft
          m365_defender:
            enabled: true
            var.oauth2.client.id: "{CLIENT}"
            var.oauth2.client.secret: "s3cret"
            var.oauth2.token_url: https://login.microsoftonline.com/{TENANT}/oauth2/v2.0/token
    """})
    inputs = {spec.client.input_id: spec for spec in settings.inputs}
    assert sorted(inputs) == ["microsoft-m365_defender-alert", "microsoft-m365_defender-incident"]
    alert = inputs["microsoft-m365_defender-alert"]
    assert streams(alert.config) == ["alert"] and alert.config.poll_interval == 300
    assert (alert.config.tenant_id, alert.config.client_id) == (TENANT, CLIENT)
    assert alert.client.tags == ["m365-defender", "forwarded"]
    assert alert.client.module_fields["event"] == {"module": "microsoft", "dataset": "m365_defender.alert"}
    assert inputs["microsoft-m365_defender-incident"].client.module_fields["event"]["dataset"] == \
        "m365_defender.incident"
    assert settings.warnings == []


def test_a_bad_stream_and_a_missing_hub_are_reported_on_their_keys(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as raised:
        load(tmp_path, {"microsoft": f"""\
            - module: microsoft
              var.tenant_id: "{TENANT}"
              var.client_id: "{CLIENT}"
              var.client_secret: s3cret
              m365_defender:
                var.streams: [alerts]
              m365_defender_event:
                var.connection_string: "{CONNECTION}"
        """})
    problems = [str(problem) for problem in raised.value.problems]
    assert any("m365_defender.var.streams" in p and "alert, incident" in p for p in problems), problems
    assert any("m365_defender_event.var.eventhub: is required" in p for p in problems), problems
    assert not any("c2VjcmV0" in p for p in problems)


def test_m365_defender_event_defaults(tmp_path: Path) -> None:
    settings = load(tmp_path, {"microsoft": f"""\
        - module: microsoft
          m365_defender_event:
            var.eventhub: Defender_Stream
            var.connection_string: "{CONNECTION}"
            var.storage_account: contosocheckpoints
            var.storage_account_key: c2VjcmV0
    """})
    [spec] = settings.inputs
    assert spec.client.input_type == "azure-eventhub"
    assert spec.client.input_id == "microsoft-m365_defender_event-contoso.servicebus.windows.net-Defender_Stream-" \
                                   "$Default"
    assert spec.client.tags == ["forwarded", "m365_defender-event"]
    assert spec.config.storage_container == "azure-eventhub-input-defender-stream"


def test_same_stream_of_another_tenant_or_app_is_not_merged(tmp_path: Path) -> None:
    other_tenant = "9d2f4b6d-8f0b-4c2e-9a4b-6d8f0b2c4e76"
    settings = load(tmp_path, {
        "entraid": f"""\
            - module: entraid
              var.tenant_id: "{other_tenant}"
              var.client_id: "{CLIENT}"
              var.client_secret: s3cret
              alerts.enabled: true
        """,
        "microsoft": f"""\
            - module: microsoft
              var.tenant_id: "{TENANT}"
              var.client_id: "{CLIENT}"
              var.client_secret: s3cret
              m365_defender.var.streams: alert
        """})
    assert sorted(spec.client.input_id for spec in settings.inputs) == ["entraid-alerts",
                                                                         "microsoft-m365_defender-alert"]
    assert not any("poll" in warning for warning in settings.warnings)


def test_a_partial_overlap_is_not_merged_but_reported(tmp_path: Path) -> None:
    settings = load(tmp_path, {"microsoft": f"""\
        - module: microsoft
          var.tenant_id: "{TENANT}"
          var.client_id: "{CLIENT}"
          var.client_secret: s3cret
          m365_defender.enabled: true
    """}, main=f"""
        forwarder.inputs:
          - type: graph
            id: everything
            tenant_id: "{TENANT}"
            client_id: "{CLIENT}"
            client_secret: s3cret
            record_types: [signinlogs, alert]
    """)
    assert sorted(spec.client.input_id for spec in settings.inputs) == [
        "everything", "microsoft-m365_defender-alert", "microsoft-m365_defender-incident"]
    [line] = [warning for warning in settings.warnings if "each poll alert" in warning]
    assert "everything, microsoft-m365_defender-alert" in line and TENANT in line and "s3cret" not in line


def test_two_standalone_inputs_of_the_same_stream_merge_into_the_first(tmp_path: Path) -> None:
    inputs = "".join(f"""
          - type: graph
            id: {name}
            tenant_id: "{TENANT}"
            client_id: "{CLIENT}"
            client_secret: s3cret
            record_types: [incident]""" for name in ("first", "second"))
    settings = load(tmp_path, {}, main=f"\n        forwarder.inputs:{inputs}\n")
    assert [spec.client.input_id for spec in settings.inputs] == ["first"]
    [line] = settings.warnings
    assert "polled once, by first" in line and "second not started" in line
