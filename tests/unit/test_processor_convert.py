"""convert: Filebeat's documented example, Go's parsing rules, modes, failures and `when`."""

from __future__ import annotations

import pytest

from forwarder.pipeline.event import Event
from forwarder.pipeline.field_path import FieldError
from tests.unit.test_processors import build, build_with_problems, run

DOCUMENTED = """
processors:
  - convert:
      fields:
        - {from: "src_ip", to: "source.ip", type: "ip"}
        - {from: "src_port", to: "source.port", type: "integer"}
      ignore_missing: true
      fail_on_error: false
"""


def test_documented_example_copies_and_converts():
    event = run(build(DOCUMENTED), {"src_ip": "192.168.1.10", "src_port": "8080"})
    assert event.fields == {"src_ip": "192.168.1.10", "src_port": "8080",
                            "source": {"ip": "192.168.1.10", "port": 8080}}


@pytest.mark.parametrize(("kind", "value", "expected"), [
    ("integer", "0x1F", 31), ("integer", "-12", -12), ("integer", "010", 10), ("long", "-0xff", -255),
    ("integer", 3.9, 3), ("long", "9000000000", 9000000000),
    ("float", "1.5", 1.5), ("double", 2, 2.0), ("boolean", "T", True), ("boolean", "False", False),
    ("string", 1.0, "1"), ("string", True, "true"), ("string", 42, "42"),
    ("ip", "2001:db8::1", "2001:db8::1"),
])
def test_conversions(kind, value, expected):
    processors = build(f"processors:\n  - convert: {{fields: [{{from: v, type: {kind}}}]}}\n")
    converted = run(processors, {"v": value}).fields["v"]
    assert converted == expected and type(converted) is type(expected)


@pytest.mark.parametrize(("kind", "value"), [
    ("integer", "9000000000"), ("integer", "12abc"), ("integer", "1_000"), ("integer", " 12"), ("boolean", "yes"),
    ("boolean", 0), ("ip", "999.1.1.1"), ("float", "x"), ("double", "1_0"),
])
def test_a_value_that_does_not_convert_fails_and_leaves_the_event_as_it_was(kind, value):
    processors = build(f"processors:\n  - convert: {{fields: [{{from: a, type: long}}, {{from: v, type: {kind}}}]}}\n")
    event = Event({"a": "1", "v": value})
    with pytest.raises(FieldError, match="unable to convert"):
        processors[0](event)
    assert event.fields == {"a": "1", "v": value}


def test_rename_mode_removes_the_source_and_when_selects_events():
    processors = build("""
processors:
  - convert:
      fields: [{from: port, to: destination.port, type: long}]
      mode: rename
      when.equals.kind: net
""")
    assert run(processors, {"port": "443", "kind": "net"}).fields == {"destination": {"port": 443}, "kind": "net"}
    assert run(processors, {"port": "443"}).fields == {"port": "443"}


def test_an_item_without_to_or_type_is_a_config_error():
    _, problems = build_with_problems("processors:\n  - convert: {fields: [{from: a}]}\n")
    assert problems and "set `to` or `type`" in problems[0]


def test_in_the_pipeline_a_failed_conversion_ships_the_event_unchanged_with_the_error_counted(harness):
    harness.pipeline.global_processors = build("""
processors:
  - convert:
      fields: [{from: a, type: long}, {from: b, type: long}]
""")
    client = harness.connect("filestream", input_id="logs")
    client.publish(Event({"message": "m", "a": "1", "b": "x"}))
    client.publish(Event({"message": "n", "a": "1", "b": "2"}))
    failed, converted = harness.take(2)
    assert failed.fields["a"] == "1" and failed.fields["b"] == "x"
    assert failed.fields["error"]["message"].startswith(
        "processor convert failed: FieldError: failed in processor.convert: conversion of field [b] to type [long] "
        "failed: unable to convert value [x]")
    assert converted.fields["a"] == 1 and converted.fields["b"] == 2
    assert client.stats.extra["processor_failures"] == 1
