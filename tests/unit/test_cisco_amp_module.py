"""The cisco module's amp fileset → the cisco-secure-endpoint input it renders, validated as the loader does."""

from __future__ import annotations

import textwrap

import yaml

from forwarder.config.inputs import COMMON_INPUT_KEYS
from forwarder.config.loader import expand_dotted
from forwarder.inputs.secure_endpoint_config import SecureEndpointConfig, parse_config
from forwarder.modules.base import FilesetInput
from forwarder.modules.cisco import MODULE_TYPE
from forwarder.schema.section import Problem, Section

SOURCE = "modules.d/cisco.yml"


def expand(text: str, parse: bool = True) -> tuple[list[tuple[FilesetInput, SecureEndpointConfig | None]], list[str]]:
    problems: list[Problem] = []
    inputs = []
    for index, item in enumerate(yaml.safe_load(textwrap.dedent(text))):
        entry = Section(expand_dotted(item), str(index), SOURCE, problems)
        entry.string("module")
        for fileset_input in MODULE_TYPE.expand(entry):
            config = parse_config(fileset_input.section) if parse else None
            if parse:
                fileset_input.section.ignore(*COMMON_INPUT_KEYS)
                fileset_input.section.finish()
            inputs.append((fileset_input, config))
    return inputs, [str(problem) for problem in problems]


def test_amp_alone_renders_one_rest_input_with_the_module_fields_and_no_umbrella() -> None:
    inputs, problems = expand("""
        - module: cisco
          amp:
            var.url: https://api.eu.amp.cisco.com/v1/events?offset=0&limit=300
            var.client_id: abc
            var.api_key: "${AMP_API_KEY}"
            var.event_types: [1090519054, 553648143]
    """)
    assert problems == []
    [(fileset_input, config)] = inputs
    assert fileset_input.input_id == "cisco-amp"
    assert fileset_input.section.data["type"] == "cisco-secure-endpoint"
    assert fileset_input.section.data["tags"] == ["cisco-amp", "forwarded"]
    assert fileset_input.module_fields["event"] == {"module": "cisco", "dataset": "cisco.amp"}
    assert [processor.__name__ for processor in fileset_input.processors] == ["cisco_secure_endpoint"]
    assert config.events_url == "https://api.eu.amp.cisco.com/v1/events"
    assert (config.first_interval, config.interval, config.limit) == (86400.0, 60.0, 500)
    assert config.event_types == [1090519054, 553648143]


def test_event_stream_mode_renders_the_stream_input_with_its_vars() -> None:
    inputs, problems = expand("""
        - module: cisco
          amp:
            var.mode: event_stream
            var.amqp_url: amqps://export-streaming.amp.cisco.com:443
            var.queue: event_stream_1234
            var.amqp_user: "1234-abcd"
            var.amqp_password: "${AMP_STREAM_PASSWORD}"
            var.prefetch: 50
    """, parse=False)
    assert problems == []
    [(fileset_input, _)] = inputs
    assert fileset_input.section.data == {
        "type": "cisco-secure-endpoint-stream", "amqp_url": "amqps://export-streaming.amp.cisco.com:443",
        "queue": "event_stream_1234", "amqp_user": "1234-abcd", "amqp_password": "${AMP_STREAM_PASSWORD}",
        "prefetch": 50, "tags": ["cisco-amp", "forwarded"]}
    assert fileset_input.module_fields["event"]["dataset"] == "cisco.amp"


def test_mistakes_are_reported_against_the_module_file() -> None:
    _, problems = expand("""
        - module: cisco
          amp:
            var.mode: poll
        - module: cisco
          amp:
            var.client_id: abc
            var.api_key: k
            var.queue: q
        - module: cisco
          amp:
            var.url: http://api.amp.cisco.com
            var.limit: 900
            var.event_types: [threat]
        - module: cisco
          amp:
            enabled: false
            var.client_id: abc
    """)
    assert problems == [
        "modules.d/cisco.yml: 0.amp.var.mode: must be one of rest, event_stream (got 'poll')",
        "modules.d/cisco.yml: 1.amp.var.queue: is a setting of var.mode: event_stream, not of var.mode: rest; set "
        "var.mode: event_stream or remove var.queue",
        "modules.d/cisco.yml: 2.amp.var.limit: must be at most 500 (got 900)",
        "modules.d/cisco.yml: 2.amp.var.client_id: is required: the 3rd-party API credential's client id (Secure "
        "Endpoint console → Administration → API Credentials)",
        "modules.d/cisco.yml: 2.amp.var.api_key: is required: the 3rd-party API credential's API key (Secure "
        "Endpoint console → Administration → API Credentials)",
        "modules.d/cisco.yml: 2.amp.var.url: must be an https:// URL such as https://api.amp.cisco.com or a region "
        "name (NA, EU, APJC) (got 'http://api.amp.cisco.com')",
        "modules.d/cisco.yml: 2.amp.var.event_types: must be numeric event type ids from /v1/event_types (got "
        "'threat')",
    ]
