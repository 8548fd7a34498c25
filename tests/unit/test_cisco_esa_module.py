"""The cisco module's esa fileset → the filestream or syslog input it renders, validated as the loader does."""

from __future__ import annotations

import textwrap

import yaml

from forwarder.config.inputs import COMMON_INPUT_KEYS
from forwarder.config.loader import expand_dotted
from forwarder.inputs import filestream_config, syslog_config
from forwarder.modules.cisco import MODULE_TYPE
from forwarder.schema.section import Problem, Section

SOURCE = "modules.d/cisco.yml"
PARSERS = {"filestream": filestream_config.parse_config, "syslog": syslog_config.parse_config}


def expand(text: str) -> tuple[list, list[str]]:
    problems: list[Problem] = []
    rendered = []
    for index, item in enumerate(yaml.safe_load(textwrap.dedent(text))):
        entry = Section(expand_dotted(item), str(index), SOURCE, problems)
        entry.string("module")
        for fileset_input in MODULE_TYPE.expand(entry):
            section = fileset_input.section
            parse = PARSERS.get(section.data["type"])
            if parse is None:  # another fileset's input (umbrella's aws-s3): not the subject here
                rendered.append((fileset_input, None))
                continue
            config = parse(section)
            section.ignore(*COMMON_INPUT_KEYS)
            section.finish()
            rendered.append((fileset_input, config))
    return rendered, [str(problem) for problem in problems]


def test_file_mode_is_the_default_and_reads_saved_files_only():
    rendered, problems = expand("""
        - module: cisco
          esa:
            enabled: true
    """)
    assert problems == []
    [(fileset_input, config)] = rendered
    assert fileset_input.input_id == "cisco-esa"
    assert fileset_input.section.data["type"] == "filestream"
    assert config.paths == ["/var/log/cisco-esa/*/*.s"]
    assert fileset_input.module_fields["event"] == {"module": "cisco", "dataset": "cisco.esa"}
    assert fileset_input.section.data["tags"] == ["cisco-esa", "forwarded"]
    assert len(fileset_input.processors) == 1

    def read(path: str) -> bool:
        return any(p.search(path) for p in config.include_files) and \
            not any(p.search(path) for p in config.exclude_files)

    assert read("/var/log/cisco-esa/mail/mail_logs.@20210228T173106.s")
    for skipped in ("mail_logs.@20210315T233403.c", "mail_logs.current", "mail_logs.@20210228T173106.s.gz"):
        assert not read(f"/var/log/cisco-esa/mail/{skipped}")


def test_esa_alone_does_not_enable_umbrella_and_umbrella_still_works_beside_it():
    rendered, problems = expand("""
        - module: cisco
          esa:
            var.paths: ["/srv/esa/*/*.s"]
    """)
    assert problems == []
    assert [fileset_input.input_id for fileset_input, _ in rendered] == ["cisco-esa"]
    rendered, problems = expand("""
        - module: cisco
          esa:
            enabled: false
          umbrella:
            var.queue_url: https://sqs.us-east-1.amazonaws.com/123456789012/umbrella
    """)
    assert problems == []
    assert [fileset_input.input_id for fileset_input, _ in rendered] == ["cisco-umbrella"]


def test_syslog_mode_renders_a_listener_on_the_vars():
    rendered, problems = expand("""
        - module: cisco
          esa:
            var.input: syslog
            var.syslog_host: 127.0.0.1
            var.syslog_port: 9514
            var.protocol: tcp
            var.timezone: Europe/Berlin
    """)
    assert problems == []
    [(_, config)] = rendered
    assert (config.tcp.host, config.tcp.port, config.udp) == ("127.0.0.1", 9514, None)
    assert str(config.timezone) == "Europe/Berlin"
    [(_, udp_config)] = expand("""
        - module: cisco
          esa:
            var.input: syslog
    """)[0]
    assert (udp_config.udp.host, udp_config.udp.port) == ("localhost", 514)


def test_mistakes_name_the_module_file_and_key():
    _, problems = expand("""
        - module: cisco
          esa:
            var.input: ftp
    """)
    assert len(problems) == 1 and problems[0].startswith("modules.d/cisco.yml: 0.esa.var.input: ")
    assert "'ftp'" in problems[0] and "file, syslog" in problems[0]
    _, problems = expand("""
        - module: cisco
          esa:
            var.syslog_port: 9514
            var.timezone: Nowhere/City
            var.pathz: [x]
    """)
    joined = "\n".join(problems)
    assert "0.esa.var.syslog_port: is a setting of var.input: syslog" in joined
    assert "0.esa.var.timezone: unknown time zone 'Nowhere/City'" in joined
    assert "0.esa.var.pathz" in joined
