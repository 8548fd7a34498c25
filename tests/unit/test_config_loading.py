"""Config files in, validated settings or one clear line per problem out."""

from __future__ import annotations

import os
import textwrap

import pytest

from forwarder.config.keystore import Keystore
from forwarder.config.loader import apply_override, expand_dotted, fold_twin_keys
from forwarder.config.settings import CliOptions, load_settings
from forwarder.schema.section import ConfigError, parse_duration, parse_size

MINIMAL_OUTPUT = "output.file:\n  path: ${path.data}/events\n"


def write_config(tmp_path, *parts, name="forwarder.yml", mode=0o600):
    path = tmp_path / name
    path.write_text("".join(textwrap.dedent(part) for part in parts))
    os.chmod(path, mode)
    return path


def load(tmp_path, *parts, **options):
    path = write_config(tmp_path, *parts)
    return load_settings(CliOptions(config_files=[str(path)], path_home=str(tmp_path), **options))


def problems_of(tmp_path, *parts, **options) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, *parts, **options)
    return [str(p) for p in caught.value.problems]


def test_dotted_and_nested_keys_mean_the_same():
    assert expand_dotted({"a.b": 1, "a": {"c": {"d.e": 2}}}) == {"a": {"b": 1, "c": {"d": {"e": 2}}}}


def test_override_values_are_yaml():
    config = expand_dotted({"output.logstash.hosts": ["a:1"]})
    apply_override(config, 'output.logstash.hosts=["127.0.0.1:5044", "[::1]:5045"]')
    apply_override(config, "queue.mem.events=10")
    assert config["output"]["logstash"]["hosts"] == ["127.0.0.1:5044", "[::1]:5045"]
    assert config["queue"]["mem"]["events"] == 10


def test_filebeat_keys_are_read_as_forwarder_twins_and_own_keys_win():
    config = {"filebeat": {"inputs": [{"type": "syslog"}], "shutdown_timeout": "1s"},
              "forwarder": {"shutdown_timeout": "2s"}}
    fold_twin_keys(config)
    assert config == {"forwarder": {"inputs": [{"type": "syslog"}], "shutdown_timeout": "2s"}}


def test_durations_and_sizes():
    assert parse_duration("1m30s") == 90
    assert parse_duration("168h") == 168 * 3600
    assert parse_duration("7d") == 7 * 86400
    assert parse_duration(5) == 5
    assert parse_size("10KiB") == 10240
    assert parse_size("20MiB") == 20 * 1024 * 1024
    with pytest.raises(ValueError):
        parse_duration("soon")


def test_shipped_style_config_loads(tmp_path):
    settings = load(tmp_path, """
        forwarder.inputs:
          - type: syslog
            protocol.udp.host: "127.0.0.1:5514"
        queue.mem:
          events: 100
          flush.timeout: 2s
        output.file:
          path: ${path.data}/events
        """)
    assert settings.queue_events == 100
    assert settings.flush_timeout == 2.0
    assert settings.output_type.name == "file"
    assert str(settings.output_config.path) == str(tmp_path / "data" / "events")
    assert [spec.client.input_type for spec in settings.inputs] == ["syslog"]


def test_unknown_key_is_reported_with_a_suggestion(tmp_path):
    problems = problems_of(tmp_path, "queue.mem.evnets: 10\n" + MINIMAL_OUTPUT)
    assert any("queue.mem.evnets: unknown setting (did you mean 'queue.mem.events'?)" in p for p in problems)
    assert all(p.startswith(str(tmp_path / "forwarder.yml")) for p in problems)


def test_wrong_type_names_key_and_value(tmp_path):
    problems = problems_of(tmp_path, "queue.mem.events: lots\n" + MINIMAL_OUTPUT)
    assert any("queue.mem.events" in p and "'lots'" in p for p in problems)


def test_malformed_yaml_gives_line_number(tmp_path):
    problems = problems_of(tmp_path, "output.file:\n  path: [unclosed\n")
    assert len(problems) == 1
    assert "invalid YAML" in problems[0] and "line" in problems[0]


def test_missing_variable_names_the_key_and_the_fix(tmp_path, monkeypatch):
    monkeypatch.delenv("FWD_TEST_UNSET", raising=False)
    problems = problems_of(tmp_path, MINIMAL_OUTPUT + "name: ${FWD_TEST_UNSET}\n")
    assert problems == [f"{tmp_path / 'forwarder.yml'}: name: ${{FWD_TEST_UNSET}} is not set in the keystore or "
                        "the environment (add it with `forwarder keystore add FWD_TEST_UNSET` or export it)"]


def test_variable_default_environment_and_keystore_precedence(tmp_path, monkeypatch):
    monkeypatch.setenv("FWD_NAME", "from-env")
    monkeypatch.setenv("FWD_EVENTS", "77")
    settings = load(tmp_path, MINIMAL_OUTPUT + "name: ${FWD_NAME}\nqueue.mem.events: ${FWD_EVENTS}\n"
                    "tags: ['${FWD_NOPE:fallback}']\n")
    assert settings.name == "from-env"
    assert settings.queue_events == 77
    Keystore(tmp_path / "data" / "forwarder.keystore").add("FWD_NAME", "from-keystore")
    settings = load(tmp_path, MINIMAL_OUTPUT + "name: ${FWD_NAME}\n")
    assert settings.name == "from-keystore"
    assert "from-keystore" in settings.secrets


def test_exactly_one_output(tmp_path):
    problems = problems_of(tmp_path, MINIMAL_OUTPUT + "output.console.pretty: true\n")
    assert any("exactly one output may be enabled" in p for p in problems)
    problems = problems_of(tmp_path, "output.elasticsearch.hosts: ['x:9200']\n")
    assert any("output.elasticsearch: unsupported output" in p for p in problems)
    settings = load(tmp_path, MINIMAL_OUTPUT + "output.console.enabled: false\n")
    assert settings.output_type.name == "file"


def test_group_writable_config_is_refused_unless_strict_perms_off(tmp_path):
    path = write_config(tmp_path, MINIMAL_OUTPUT, mode=0o664)
    with pytest.raises(ConfigError) as caught:
        load_settings(CliOptions(config_files=[str(path)], path_home=str(tmp_path)))
    assert "can only be writable by the owner" in str(caught.value)
    assert "-rw-rw-r--" in str(caught.value)
    load_settings(CliOptions(config_files=[str(path)], path_home=str(tmp_path), strict_perms=False))


def test_unknown_input_type_and_bad_input_key(tmp_path):
    problems = problems_of(tmp_path, MINIMAL_OUTPUT, """
        forwarder.inputs:
          - type: sylsog
          - type: syslog
            protocl.udp.host: "127.0.0.1:1"
        """)
    assert any("forwarder.inputs.0.type: unknown input type 'sylsog'" in p for p in problems)
    assert any("forwarder.inputs.1.protocl" in p and "did you mean" in p for p in problems)


def test_disabled_input_is_not_validated_further(tmp_path):
    settings = load(tmp_path, MINIMAL_OUTPUT, """
        forwarder.inputs:
          - type: syslog
            enabled: false
            anything: goes
        """)
    assert settings.inputs == []
    assert any("no inputs are enabled" in w for w in settings.warnings)


def test_module_file_with_unknown_module_names_the_file(tmp_path):
    (tmp_path / "modules.d").mkdir()
    write_config(tmp_path / "modules.d", "- module: nosuchthing\n", name="nosuchthing.yml")
    problems = problems_of(tmp_path, MINIMAL_OUTPUT)
    assert any("modules.d/nosuchthing.yml: 0.module: unknown module 'nosuchthing'" in p for p in problems)


def test_secret_like_settings_are_collected_for_redaction(tmp_path):
    settings = load(tmp_path, MINIMAL_OUTPUT, """
        forwarder.inputs:
          - type: syslog
            protocol.udp.host: "127.0.0.1:5514"
            fields:
              client_secret: "s3cr3t-value"
        """)
    assert "s3cr3t-value" in settings.secrets


def test_a_secret_with_the_wrong_type_is_not_echoed(tmp_path):
    problems = problems_of(tmp_path, MINIMAL_OUTPUT, """
        output.file.enabled: false
        output.logstash:
          hosts: ["127.0.0.1:5044"]
          ssl.key_passphrase: [hunter2-secret]
        """)
    assert any("ssl.key_passphrase" in p for p in problems)
    assert not any("hunter2" in p for p in problems)


def test_external_input_files_are_loaded_and_checked(tmp_path):
    (tmp_path / "inputs.d").mkdir()
    write_config(tmp_path / "inputs.d", """
        - type: syslog
          protocol.tcp.host: "127.0.0.1:6514"
        """, name="edge.yml")
    write_config(tmp_path / "inputs.d", "- type: syslog\n  protocol.tcp.hots: x\n", name="bad.yml")
    problems = problems_of(tmp_path, MINIMAL_OUTPUT, "forwarder.config.inputs.path: ${path.config}/inputs.d/*.yml\n")
    assert any("inputs.d/bad.yml: 0.protocol.tcp.hots: unknown setting (did you mean" in p for p in problems)
    (tmp_path / "inputs.d" / "bad.yml").unlink()
    settings = load(tmp_path, MINIMAL_OUTPUT, "forwarder.config.inputs.path: ${path.config}/inputs.d/*.yml\n")
    assert [spec.client.input_type for spec in settings.inputs] == ["syslog"]
