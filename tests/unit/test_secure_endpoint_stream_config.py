"""The cisco-secure-endpoint-stream input's settings, and how one stream message becomes an event."""

from __future__ import annotations

import json

import pytest

from forwarder.inputs.secure_endpoint_stream_config import parse_config, standalone_processors
from forwarder.inputs.secure_endpoint_stream_events import stream_message_event
from forwarder.schema.section import Problem, Section

VALID = {"amqp_url": "amqps://export-streaming.amp.cisco.com:443", "queue": "event_stream_1234",
         "amqp_user": "1234-5678abcdef", "amqp_password": "stream-Pass-Not-Shown"}


def parse(**overrides: object) -> tuple[object, list[str]]:
    problems: list[Problem] = []
    section = Section({**VALID, **overrides}, "forwarder.inputs.0", "forwarder.yml", problems)
    config = parse_config(section)
    section.finish()
    return config, [str(problem) for problem in problems]


def test_defaults_of_a_cisco_stream():
    config, problems = parse()
    assert problems == []
    assert (config.scheme, config.host, config.port, config.virtual_host) == (
        "amqps", "export-streaming.amp.cisco.com", 443, "/")
    assert config.prefetch == 100 and config.verification_mode == "full"
    assert config.ssl_context() is not None
    assert "stream-Pass" not in repr(config) and config.broker == "amqps://export-streaming.amp.cisco.com:443"
    assert standalone_processors(config) == [{"cisco_secure_endpoint": {}}]
    assert standalone_processors(parse(normalize=False)[0]) == []


def test_plain_amqp_with_a_virtual_host_and_the_default_port():
    config, problems = parse(amqp_url="amqp://127.0.0.1/amp%2Fevents")
    assert problems == []
    assert (config.port, config.virtual_host, config.ssl_context()) == (5672, "amp/events", None)


@pytest.mark.parametrize(("overrides", "expected"), [
    ({"amqp_url": "amqps://user:stream-Pass-Not-Shown@host:443"}, "amqp_url: must not hold credentials"),
    ({"amqp_url": "https://host"}, "amqp_url: must start with amqps://"),
    ({"amqp_url": ""}, "amqp_url: is required"),
    ({"queue": ""}, "queue: is required: the event stream's queue_name"),
    ({"amqp_password": ""}, "amqp_password: is required"),
    ({"prefetch": 0}, "prefetch"),
    ({"ssl": {"verification_mode": "sometimes"}}, "verification_mode"),
])
def test_mistakes_are_reported_on_their_key(overrides, expected):
    _config, problems = parse(**overrides)
    assert any(expected in problem for problem in problems), problems
    assert not any("stream-Pass" in problem for problem in problems)


def test_an_event_keeps_its_id_and_date_and_an_envelope_is_unwrapped():
    record = {"id": 6761826132415096000, "date": "2022-04-04T19:35:00+00:00", "event_type": "Cloud IOC"}
    for body in (record, {"version": "v1.2.0", "metadata": {"links": {}}, "data": record}):
        event = stream_message_event(json.dumps(body).encode())
        assert event.meta["_id"] == "6761826132415096000"
        assert event.timestamp == 1649100900.0
        assert event.record == record and json.loads(event.fields["message"]) == record
        assert event.record_kind == "secure_endpoint" and "tags" not in event.fields


def test_a_body_that_is_not_an_event_is_forwarded_raw_with_a_stable_id():
    first, again = stream_message_event(b"\xffnot json"), stream_message_event(b"\xffnot json")
    assert first.fields["tags"] == ["_parse_failure"] and "not JSON" in first.fields["error"]["message"]
    assert first.fields["message"] == "\ufffdnot json" and first.meta["_id"] == again.meta["_id"]
    assert stream_message_event(b"[1, 2]").fields["tags"] == ["_parse_failure"]
