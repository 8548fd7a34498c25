"""`${NAME}` values stay the text they were set to; only a setting's declared type converts them."""

from __future__ import annotations

import os
import textwrap

import pytest

from forwarder.config.keystore import Keystore
from forwarder.config.settings import CliOptions, Settings, load_settings

YAML_LOOKALIKES = ["0x1F2E", "yes", "01234567", "1:20", "on", "12_345", "0b101", ".inf", "~", "null", "2024-01-02"]


def load(tmp_path, text: str) -> Settings:
    path = tmp_path / "forwarder.yml"
    path.write_text("output.file.path: ${path.data}/events\n" + textwrap.dedent(text))
    os.chmod(path, 0o600)
    return load_settings(CliOptions(config_files=[str(path)], path_home=str(tmp_path)))


@pytest.mark.parametrize("value", YAML_LOOKALIKES)
def test_an_environment_value_is_kept_as_text(tmp_path, monkeypatch, value):
    monkeypatch.setenv("FWD_LABEL", value)
    assert load(tmp_path, "name: ${FWD_LABEL}\n").name == value


@pytest.mark.parametrize("value", YAML_LOOKALIKES)
def test_a_keystore_value_is_kept_as_text_and_redacted(tmp_path, value):
    Keystore(tmp_path / "data" / "forwarder.keystore").add("FWD_LABEL", value)
    settings = load(tmp_path, "name: ${FWD_LABEL}\n")
    assert settings.name == value
    assert value in settings.secrets


def test_a_secret_setting_from_the_environment_is_redacted_as_written(tmp_path, monkeypatch):
    monkeypatch.setenv("FWD_CLIENT_SECRET", "01234567")
    settings = load(tmp_path, """
        forwarder.inputs:
          - type: graph
            tenant_id: 5d7f9b1c-3e5a-4c7e-9b1d-3f5a7c9e1b43
            client_id: 1c3e5a7c-9e1b-4d3f-8a5c-7e9a1c3e5b54
            client_secret: ${FWD_CLIENT_SECRET}
            record_types: [signinlogs]
        """)
    assert settings.inputs[0].config.client_secret == "01234567"
    assert "01234567" in settings.secrets


@pytest.mark.parametrize(("text", "expected"), [("true", True), ("false", False)])
def test_typed_settings_convert_a_reference(tmp_path, monkeypatch, text, expected):
    monkeypatch.setenv("FWD_PORT", "5514")
    monkeypatch.setenv("FWD_ON", text)
    monkeypatch.setenv("FWD_PERIOD", "45s")
    settings = load(tmp_path, """
        http.enabled: ${FWD_ON}
        http.port: ${FWD_PORT}
        logging.metrics.period: ${FWD_PERIOD}
        forwarder.inputs:
          - type: syslog
            enabled: ${FWD_ON}
            protocol.udp.host: "127.0.0.1:${FWD_PORT}"
        """)
    assert settings.http_port == 5514 and settings.http_enabled is expected
    assert settings.logging.metrics_period == 45.0
    assert len(settings.inputs) == (1 if expected else 0)


def test_a_whole_value_list_reference_becomes_a_list_of_text(tmp_path, monkeypatch):
    monkeypatch.setenv("FWD_TAGS", "[edge, 0x10, yes]")
    settings = load(tmp_path, """
        tags: ${FWD_TAGS}
        forwarder.inputs:
          - type: syslog
            protocol.udp.host: "127.0.0.1:5514"
        """)
    assert settings.inputs[0].client.tags == ["edge", "0x10", "yes"]
