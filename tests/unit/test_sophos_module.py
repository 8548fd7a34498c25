"""The sophos module file → the syslog input and mapping it renders, validated as the loader validates them."""

from __future__ import annotations

import textwrap
from pathlib import Path

import yaml

from forwarder import __version__
from forwarder.config.inputs import COMMON_INPUT_KEYS
from forwarder.config.loader import expand_dotted
from forwarder.inputs.syslog_config import SyslogConfig, parse_config
from forwarder.modules.base import FilesetInput
from forwarder.modules.sophos import MODULE_TYPE
from forwarder.pipeline.event import Event
from forwarder.schema.section import Problem, Section

SOURCE = "modules.d/sophos.yml"
SHIPPED = Path(__file__).resolve().parents[2] / "modules.d" / "sophos.yml.disabled"
RECORD = ('device_name="SFW" timestamp="2021-11-15T20:52:23-0600" device_serial_id="S1" log_id=063411660020 '
          'log_type="Event" log_component="DHCP Server" status="Renew"')


def expand(text: str) -> tuple[list[tuple[FilesetInput, SyslogConfig]], list[str]]:
    problems: list[Problem] = []
    inputs = []
    for index, item in enumerate(yaml.safe_load(textwrap.dedent(text))):
        entry = Section(expand_dotted(item), str(index), SOURCE, problems)
        entry.string("module")
        for fileset_input in MODULE_TYPE.expand(entry):
            config = parse_config(fileset_input.section)
            fileset_input.section.ignore(*COMMON_INPUT_KEYS)
            fileset_input.section.finish()
            inputs.append((fileset_input, config))
    return inputs, [str(problem) for problem in problems]


def test_shipped_file_renders_filebeats_defaults_udp_localhost_9004():
    inputs, problems = expand(SHIPPED.read_text())
    assert problems == []
    [(fileset_input, config)] = inputs
    assert fileset_input.section.data["protocol"] == {"udp": {"host": "localhost:9004"}}
    assert config.tcp is None and config.udp is not None
    assert fileset_input.section.data["tags"] == ["sophos-xg", "forwarded"]
    assert fileset_input.module_fields["event"] == {"module": "sophos", "dataset": "sophos.xg"}
    assert fileset_input.ingest_pipeline is None
    [mapping] = fileset_input.processors
    event = mapping(Event({"message": RECORD}))
    assert event.fields["host"] == {"name": "firewall.localgroup.local"}


def test_vars_reach_the_input_and_the_mapping():
    inputs, problems = expand("""
        - module: sophos
          xg:
            var.input: tcp
            var.syslog_host: 0.0.0.0
            var.syslog_port: 5140
            var.timezone: Asia/Kolkata
            var.default_host_name: unknown.fw
            var.known_devices:
              - {serial_number: S1, hostname: fw1.example}
    """)
    assert problems == []
    [(fileset_input, config)] = inputs
    assert fileset_input.section.data["protocol"] == {"tcp": {"host": "0.0.0.0:5140"}}
    assert config.udp is None and config.tcp is not None
    event = fileset_input.processors[0](Event({"message": RECORD}))
    assert event.fields["host"] == {"name": "fw1.example"}


def test_normalize_false_sends_raw_records_for_filebeats_pipeline():
    inputs, problems = expand("""
        - module: sophos
          xg: {var.normalize: false, var.timezone: UTC}
    """)
    assert problems == []
    [(fileset_input, _)] = inputs
    assert fileset_input.processors == []
    assert fileset_input.ingest_pipeline == f"filebeat-{__version__}-sophos-xg-pipeline"


def test_mistakes_name_the_module_file_and_key():
    _, problems = expand("""
        - module: sophos
          xg:
            var.input: file
            var.syslog_port: 70000
            var.timezone: Nowhere/City
            var.known_devices: [{hostname: a}]
            var.sysog_host: x
    """)
    text = "\n".join(problems)
    assert all(SOURCE in problem for problem in problems)
    for key in ("xg.var.input", "xg.var.syslog_port", "xg.var.timezone", "xg.var.known_devices.0",
                "xg.var.sysog_host"):
        assert key in text, (key, text)


def test_disabled_fileset_renders_nothing():
    inputs, problems = expand("""
        - module: sophos
          xg: {enabled: false}
    """)
    assert (inputs, problems) == ([], [])
